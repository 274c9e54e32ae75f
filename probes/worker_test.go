package probes

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	criclient "k8s.io/cri-client/pkg"
	"k8s.io/utils/ptr"
)

func TestWorkerThresholds(t *testing.T) {
	timedOut := fmt.Errorf("%w: %q timed out after 1s", criclient.ErrCommandTimedOut, "probe")
	tests := []struct {
		name  string
		typ   ProbeType
		probe v1.Probe // handler filled in
		// answers of the exec probe in order (true = exit 0); or errs.
		answers []bool
		errs    []error
		// after the first probe and then after each period:
		wantCalls   []int    // exec calls so far
		wantResults []Result // published result
		wantTimeout time.Duration
	}{{
		name:        "readiness defaults: one success, three failures",
		typ:         Readiness,
		answers:     []bool{true, false, false, false, true},
		wantCalls:   []int{1, 2, 3, 4, 5},
		wantResults: []Result{Success, Success, Success, Failure, Success},
		wantTimeout: time.Second,
	}, {
		name:        "readiness success threshold 2",
		typ:         Readiness,
		probe:       v1.Probe{SuccessThreshold: 2},
		answers:     []bool{true, true, false, false, false, true, true},
		wantCalls:   []int{1, 2, 3, 4, 5, 6, 7},
		wantResults: []Result{Failure, Success, Success, Success, Failure, Failure, Success},
	}, {
		name:        "readiness failure threshold 2 needs failures in a row",
		typ:         Readiness,
		probe:       v1.Probe{FailureThreshold: 2},
		answers:     []bool{false, true, false, false},
		wantCalls:   []int{1, 2, 3, 4},
		wantResults: []Result{Failure, Success, Success, Failure},
	}, {
		name:        "liveness defaults: fails on the third failure, then holds",
		typ:         Liveness,
		answers:     []bool{false, false, false, true},
		wantCalls:   []int{1, 2, 3, 3, 3},
		wantResults: []Result{Success, Success, Failure, Failure, Failure},
	}, {
		name:        "liveness failure threshold 1",
		typ:         Liveness,
		probe:       v1.Probe{FailureThreshold: 1},
		answers:     []bool{true, false, true},
		wantCalls:   []int{1, 2, 2},
		wantResults: []Result{Success, Failure, Failure},
	}, {
		name:        "startup succeeds on the second probe, then stops probing",
		typ:         Startup,
		answers:     []bool{false, true, false},
		wantCalls:   []int{1, 2, 2},
		wantResults: []Result{Unknown, Success, Success},
	}, {
		name:        "startup fails after failure threshold",
		typ:         Startup,
		probe:       v1.Probe{FailureThreshold: 2},
		answers:     []bool{false, false, true},
		wantCalls:   []int{1, 2, 2},
		wantResults: []Result{Unknown, Failure, Failure},
	}, {
		name:        "initial delay: no probe before 3s",
		typ:         Readiness,
		probe:       v1.Probe{InitialDelaySeconds: 3, PeriodSeconds: 1},
		answers:     []bool{true},
		wantCalls:   []int{0, 0, 0, 1, 2},
		wantResults: []Result{Failure, Failure, Failure, Success, Success},
	}, {
		name:        "period 5s",
		typ:         Liveness,
		probe:       v1.Probe{PeriodSeconds: 5},
		answers:     []bool{true},
		wantCalls:   []int{1, 2, 3},
		wantResults: []Result{Success, Success, Success},
	}, {
		name:        "timeouts are failures; the timeout reaches the runtime",
		typ:         Liveness,
		probe:       v1.Probe{TimeoutSeconds: 4, FailureThreshold: 2},
		errs:        []error{timedOut},
		wantCalls:   []int{1, 2, 2},
		wantResults: []Result{Success, Failure, Failure},
		wantTimeout: 4 * time.Second,
	}, {
		name:        "errors are retried and thrown away",
		typ:         Readiness,
		errs:        []error{fmt.Errorf("runtime down"), fmt.Errorf("runtime down"), fmt.Errorf("runtime down"), nil},
		wantCalls:   []int{3, 4},
		wantResults: []Result{Failure, Success},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.errs != nil {
				h.exec.planErrors("probe", tc.errs...)
			} else {
				h.exec.plan("probe", tc.answers...)
			}
			p := tc.probe
			p.ProbeHandler = execProbeSpec("probe").ProbeHandler
			var c v1.Container
			switch tc.typ {
			case Liveness:
				c.LivenessProbe = &p
			case Readiness:
				c.ReadinessProbe = &p
			case Startup:
				c.StartupProbe = &p
			}
			pod := testPod("p1", c)
			h.status.set(pod.UID, running("abc", t0, "c"))
			h.m.AddPod(pod)

			period := time.Duration(withDefaults(&p).PeriodSeconds) * time.Second
			for i := range tc.wantResults {
				if i == 0 {
					h.waitIter(pod, "c", tc.typ)
				} else {
					h.step(period, pod, "c", tc.typ)
				}
				calls := h.exec.callsOf("probe")
				if len(calls) != tc.wantCalls[i] {
					t.Fatalf("after probe %d: %d exec calls, want %d", i, len(calls), tc.wantCalls[i])
				}
				got, ok := h.m.Get(tc.typ, "nodekit://abc")
				if !ok || got != tc.wantResults[i] {
					t.Fatalf("after probe %d: result %v (cached %v), want %v", i, got, ok, tc.wantResults[i])
				}
			}
			calls := h.exec.callsOf("probe")
			for i, call := range calls {
				if call.id != "abc" {
					t.Errorf("call %d: container id %q, want the CRI id abc", i, call.id)
				}
				if tc.wantTimeout != 0 && call.timeout != tc.wantTimeout {
					t.Errorf("call %d: timeout %s, want %s", i, call.timeout, tc.wantTimeout)
				}
			}
			// Probes happen one period apart, from the container's start
			// (plus the initial delay).
			if tc.errs == nil && len(calls) > 0 {
				first := t0.Add(time.Duration(p.InitialDelaySeconds) * time.Second)
				for i, call := range calls {
					if want := first.Add(time.Duration(i) * period); !call.at.Equal(want) {
						t.Errorf("call %d at %s, want %s", i, call.at.Sub(t0), want.Sub(t0))
					}
				}
			}
			if tickers, _ := h.clock.recorded(); len(tickers) == 0 || tickers[0] != period {
				t.Errorf("tickers %v, want the first of %s", tickers, period)
			}
		})
	}
}

func TestWorkerUpdatesOnlyOnChange(t *testing.T) {
	h := newHarness(t)
	h.exec.plan("probe", true, true, false, false, false, false, true, true)
	pod := testPod("p1", v1.Container{ReadinessProbe: &v1.Probe{
		ProbeHandler: execProbeSpec("probe").ProbeHandler, FailureThreshold: 2,
	}})
	h.status.set(pod.UID, running("abc", t0, "c"))
	h.m.AddPod(pod)
	h.waitIter(pod, "c", Readiness)
	for range 7 {
		h.step(10*time.Second, pod, "c", Readiness)
	}
	got := h.drain(Readiness)
	want := []Result{Failure, Success, Failure, Success}
	if len(got) != len(want) {
		t.Fatalf("updates %v, want results %s", got, resultsString(want))
	}
	for i, u := range got {
		if u.Result != want[i] || u.ContainerID != "nodekit://abc" || u.PodUID != pod.UID ||
			u.ContainerName != "c" || u.GracePeriodSeconds != 0 {
			t.Errorf("update %d = %+v, want result %v for nodekit://abc of %s", i, u, want[i], pod.UID)
		}
	}
}

func TestWorkerHoldsAfterLivenessFailureUntilNewContainer(t *testing.T) {
	h := newHarness(t)
	h.exec.plan("live", false, true)
	pod := testPod("p1", v1.Container{LivenessProbe: &v1.Probe{
		ProbeHandler: execProbeSpec("live").ProbeHandler, FailureThreshold: 1, PeriodSeconds: 1,
		TerminationGracePeriodSeconds: ptr.To[int64](7),
	}})
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	h.status.set(pod.UID, running("first", t0, "c"))
	h.m.AddPod(pod)
	h.waitIter(pod, "c", Liveness)

	ups := h.drain(Liveness)
	if len(ups) != 2 || ups[0].Result != Success || ups[1].Result != Failure {
		t.Fatalf("liveness updates %+v, want Success then Failure", ups)
	}
	if ups[1].GracePeriodSeconds != 7 || ups[1].ContainerID != "nodekit://first" {
		t.Errorf("failure update %+v: want the probe's grace period 7 for nodekit://first", ups[1])
	}
	// On hold: the same container is not probed again.
	for range 3 {
		h.step(time.Second, pod, "c", Liveness)
	}
	if n := len(h.exec.callsOf("live")); n != 1 {
		t.Fatalf("%d probes of a container on hold, want 1", n)
	}
	// The container is replaced: probing resumes from Success.
	h.status.set(pod.UID, running("second", t0.Add(3*time.Second), "c"))
	h.step(time.Second, pod, "c", Liveness)
	calls := h.exec.callsOf("live")
	if len(calls) != 2 || calls[1].id != "second" {
		t.Fatalf("calls %+v, want a second probe of container second", calls)
	}
	if r, ok := h.m.Get(Liveness, "nodekit://second"); !ok || r != Success {
		t.Errorf("new container liveness = %v %v, want Success", r, ok)
	}
	if _, ok := h.m.Get(Liveness, "nodekit://first"); ok {
		t.Errorf("the replaced container's result is still cached")
	}
	if ups := h.drain(Liveness); len(ups) != 1 || ups[0].Result != Success || ups[0].ContainerID != "nodekit://second" {
		t.Errorf("updates %+v, want one Success for nodekit://second", ups)
	}
}

func TestWorkerStartupGating(t *testing.T) {
	for _, viaStatus := range []bool{false, true} {
		t.Run(fmt.Sprintf("started flag in status=%v", viaStatus), func(t *testing.T) {
			h := newHarness(t)
			h.exec.plan("start", false, false, true)
			h.exec.plan("live", true)
			h.exec.plan("ready", true)
			pod := testPod("p1", v1.Container{
				StartupProbe:   &v1.Probe{ProbeHandler: execProbeSpec("start").ProbeHandler, PeriodSeconds: 1, FailureThreshold: 5},
				LivenessProbe:  &v1.Probe{ProbeHandler: execProbeSpec("live").ProbeHandler, PeriodSeconds: 1},
				ReadinessProbe: &v1.Probe{ProbeHandler: execProbeSpec("ready").ProbeHandler, PeriodSeconds: 1},
			})
			st := running("abc", t0, "c")
			h.status.set(pod.UID, st)
			h.m.AddPod(pod)
			all := []ProbeType{Startup, Readiness, Liveness}
			for _, typ := range all {
				h.waitIter(pod, "c", typ)
			}
			h.step(time.Second, pod, "c", all...)
			if n, l, r := len(h.exec.callsOf("start")), len(h.exec.callsOf("live")), len(h.exec.callsOf("ready")); n != 2 || l != 0 || r != 0 {
				t.Fatalf("before startup succeeded: %d startup, %d liveness, %d readiness probes; want 2, 0, 0", n, l, r)
			}
			// Not started: not ready, not started.
			check := st.DeepCopy()
			h.m.UpdatePodStatus(pod, check)
			if cs := check.ContainerStatuses[0]; *cs.Started || cs.Ready {
				t.Fatalf("before startup: started %v ready %v, want false false", *cs.Started, cs.Ready)
			}
			if viaStatus {
				// The startup probe is planned to fail from here on, but the
				// status says the container started (as after UpdatePodStatus
				// of an earlier success): liveness and readiness run.
				h.exec.plan("start", false)
				st.ContainerStatuses[0].Started = ptr.To(true)
				h.status.set(pod.UID, st)
			}
			h.step(time.Second, pod, "c", all...)
			if !viaStatus {
				if ups := h.drainResults(Startup); resultsString(ups) != "Unknown,Success" {
					t.Fatalf("startup updates %s, want Unknown,Success", resultsString(ups))
				}
			}
			// This third second's probes ran in an order we do not know;
			// from the next one on, liveness and readiness must run.
			h.step(time.Second, pod, "c", all...)
			if l, r := len(h.exec.callsOf("live")), len(h.exec.callsOf("ready")); l < 1 || r < 1 {
				t.Fatalf("after startup: %d liveness, %d readiness probes, want both", l, r)
			}
			wantStart := 3
			if viaStatus {
				wantStart = 2
			}
			if n := len(h.exec.callsOf("start")); n != wantStart {
				t.Errorf("%d startup probes, want %d: none once started", n, wantStart)
			}
			if r, _ := h.m.Get(Readiness, "nodekit://abc"); r != Success {
				t.Errorf("readiness %v after startup, want Success", r)
			}
		})
	}
}
