package probes

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func TestJitterDelaysFirstProbe(t *testing.T) {
	h := newHarness(t)
	h.m.jitter = func(period time.Duration) time.Duration {
		if period != 10*time.Second {
			t.Errorf("jitter asked for period %s, want 10s", period)
		}
		return 3 * time.Second
	}
	pod := testPod("p1", v1.Container{LivenessProbe: execProbeSpec("live")})
	h.status.set(pod.UID, running("abc", t0, "c"))
	h.m.AddPod(pod)
	waitUntil(t, "the jitter timer", func() bool { _, timers := h.clock.recorded(); return len(timers) == 1 })
	h.clock.Step(2 * time.Second)
	h.step(time.Second, pod, "c", Liveness)
	calls := h.exec.callsOf("live")
	if len(calls) != 1 || !calls[0].at.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("calls %+v, want one probe at +3s", calls)
	}
	if _, timers := h.clock.recorded(); timers[0] != 3*time.Second {
		t.Errorf("jitter timer %s, want 3s", timers[0])
	}
}

func TestNoJitterLongAfterStart(t *testing.T) {
	h := newHarness(t)
	h.m.jitter = func(time.Duration) time.Duration { return 3 * time.Second }
	h.clock.Step(11 * time.Second) // more than a period after the manager started
	pod := testPod("p1", v1.Container{LivenessProbe: execProbeSpec("live")})
	h.status.set(pod.UID, running("abc", t0, "c"))
	h.m.AddPod(pod)
	h.waitIter(pod, "c", Liveness)
	if _, timers := h.clock.recorded(); len(timers) != 0 {
		t.Errorf("jitter timers %v for a worker started long after the manager", timers)
	}
	if calls := h.exec.callsOf("live"); len(calls) != 1 || !calls[0].at.Equal(t0.Add(11*time.Second)) {
		t.Errorf("calls %+v, want one immediate probe", calls)
	}
}

func TestWorkerContainerStates(t *testing.T) {
	waiting := v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	exited := v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1}}
	tests := []struct {
		name          string
		restartPolicy v1.RestartPolicy
		sidecar       bool
		deleting      bool
		typ           ProbeType
		noStatus      bool
		state         v1.ContainerState
		phase         v1.PodPhase
		wantKeepGoing bool
		wantResult    Result
		wantCached    bool
		wantCalls     int
	}{
		{name: "no pod status yet", noStatus: true, typ: Readiness, wantKeepGoing: true},
		{name: "waiting container: failure, no probe", typ: Readiness, state: waiting, wantKeepGoing: true, wantResult: Failure, wantCached: true},
		{name: "waiting container liveness: failure", typ: Liveness, state: waiting, wantKeepGoing: true, wantResult: Failure, wantCached: true},
		{name: "exited, will restart", typ: Readiness, state: exited, restartPolicy: v1.RestartPolicyOnFailure, wantKeepGoing: true, wantResult: Failure, wantCached: true},
		{name: "exited, never restarted: worker ends", typ: Readiness, state: exited, restartPolicy: v1.RestartPolicyNever, wantKeepGoing: false},
		{name: "exited sidecar of a Never pod is restarted", typ: Readiness, sidecar: true, state: exited, restartPolicy: v1.RestartPolicyNever, wantKeepGoing: true, wantResult: Failure, wantCached: true},
		{name: "pod succeeded: worker ends", typ: Readiness, phase: v1.PodSucceeded, wantKeepGoing: false},
		{name: "pod failed: worker ends", typ: Liveness, phase: v1.PodFailed, wantKeepGoing: false},
		{name: "pod deleting: liveness ends quietly", typ: Liveness, deleting: true, wantKeepGoing: false},
		{name: "running without a start time is probed", typ: Readiness, state: v1.ContainerState{Running: &v1.ContainerStateRunning{}}, wantKeepGoing: true, wantResult: Success, wantCached: true, wantCalls: 1},
		{name: "pod deleting: readiness still probes", typ: Readiness, deleting: true, wantKeepGoing: true, wantResult: Success, wantCached: true, wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			p := execProbeSpec("probe")
			c := v1.Container{Name: "c"}
			switch tc.typ {
			case Liveness:
				c.LivenessProbe = p
			case Readiness:
				c.ReadinessProbe = p
			}
			pod := testPod("p1", v1.Container{})
			pod.Spec.Containers = nil
			if tc.sidecar {
				c.RestartPolicy = ptr.To(v1.ContainerRestartPolicyAlways)
				pod.Spec.InitContainers = []v1.Container{c}
				pod.Spec.Containers = []v1.Container{{Name: "app"}}
			} else {
				pod.Spec.Containers = []v1.Container{c}
			}
			if tc.restartPolicy != "" {
				pod.Spec.RestartPolicy = tc.restartPolicy
			}
			if tc.deleting {
				pod.DeletionTimestamp = &metav1.Time{Time: t0}
			}
			st := running("abc", t0, "c")
			if tc.phase != "" {
				st.Phase = tc.phase
			}
			if tc.state != (v1.ContainerState{}) {
				st.ContainerStatuses[0].State = tc.state
			}
			if tc.sidecar {
				st.InitContainerStatuses, st.ContainerStatuses = st.ContainerStatuses, nil
			}
			if !tc.noStatus {
				h.status.set(pod.UID, st)
			}
			h.m.AddPod(pod)
			if keep := h.waitIter(pod, "c", tc.typ); keep != tc.wantKeepGoing {
				t.Fatalf("keepGoing = %v, want %v", keep, tc.wantKeepGoing)
			}
			if n := len(h.exec.callsOf("probe")); n != tc.wantCalls {
				t.Errorf("%d probes, want %d", n, tc.wantCalls)
			}
			if !tc.wantKeepGoing {
				waitUntil(t, "the worker to end", func() bool { return h.m.workerCount() == 0 })
				return // its results are gone with it
			}
			r, ok := h.m.Get(tc.typ, "abc")
			if ok != tc.wantCached || (ok && r != tc.wantResult) {
				t.Errorf("result %v (cached %v), want %v (cached %v)", r, ok, tc.wantResult, tc.wantCached)
			}
		})
	}
}

func TestDeletingPodLivenessEndsWithSuccess(t *testing.T) {
	h := newHarness(t)
	pod := testPod("p1", v1.Container{LivenessProbe: execProbeSpec("live")})
	pod.DeletionTimestamp = &metav1.Time{Time: t0}
	h.status.set(pod.UID, running("abc", t0, "c"))
	h.m.AddPod(pod)
	h.waitIter(pod, "c", Liveness)
	if rs := h.drainResults(Liveness); resultsString(rs) != "Success" {
		t.Errorf("liveness updates %s, want Success", resultsString(rs))
	}
}

func twoProbePod(uid string) *v1.Pod {
	return testPod(uid, v1.Container{
		LivenessProbe:  execProbeSpec("live"),
		ReadinessProbe: execProbeSpec("ready"),
	})
}

func TestRemoveAndCleanupStopWorkers(t *testing.T) {
	h := newHarness(t)
	baseline := runtime.NumGoroutine()
	p1, p2 := twoProbePod("p1"), twoProbePod("p2")
	h.status.set(p1.UID, running("c1", t0, "c"))
	h.status.set(p2.UID, running("c2", t0, "c"))
	h.m.AddPod(p1)
	h.m.AddPod(p2)
	h.m.AddPod(p1) // again: no new workers
	for _, p := range []*v1.Pod{p1, p2} {
		h.waitIter(p, "c", Liveness)
		h.waitIter(p, "c", Readiness)
	}
	if n := h.m.workerCount(); n != 4 {
		t.Fatalf("%d workers, want 4", n)
	}
	if n := runtime.NumGoroutine(); n < baseline+4 {
		t.Fatalf("%d goroutines, want at least %d", n, baseline+4)
	}

	h.m.CleanupPods(map[types.UID]sets.Empty{p1.UID: {}})
	waitUntil(t, "p2's workers to end", func() bool { return h.m.workerCount() == 2 })
	for _, typ := range []ProbeType{Liveness, Readiness} {
		if _, ok := h.m.Get(typ, "nodekit://c2"); ok {
			t.Errorf("%s result of removed pod p2 still cached", typ)
		}
		if _, ok := h.m.Get(typ, "nodekit://c1"); !ok {
			t.Errorf("%s result of kept pod p1 dropped", typ)
		}
	}

	h.m.StopLivenessAndStartup(p1)
	waitUntil(t, "p1's liveness worker to end", func() bool { return h.m.workerCount() == 1 })
	if _, ok := h.m.getWorker(probeKey{p1.UID, "c", Readiness}); !ok {
		t.Fatalf("StopLivenessAndStartup stopped the readiness worker")
	}

	h.m.RemovePod(p1)
	waitUntil(t, "all workers to end", func() bool { return h.m.workerCount() == 0 })
	waitGoroutines(t, baseline)
	if _, ok := h.m.Get(Readiness, "nodekit://c1"); ok {
		t.Errorf("readiness result of removed pod p1 still cached")
	}
}

func TestStopUnblocksWorkersAndEndsAddPod(t *testing.T) {
	h := newHarness(t)
	// Nobody reads the readiness channel: fill it so the worker blocks on
	// publishing its initial result.
	for range updatesBuffer {
		h.m.updates[Readiness] <- Update{}
	}
	pod := testPod("p1", v1.Container{ReadinessProbe: execProbeSpec("ready")})
	h.status.set(pod.UID, running("abc", t0, "c"))
	h.m.AddPod(pod)
	waitUntil(t, "the worker to publish", func() bool {
		_, ok := h.m.Get(Readiness, "abc")
		return ok
	})
	done := make(chan struct{})
	go func() { h.m.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Stop did not return with a worker blocked on its channel")
	}
	h.m.AddPod(twoProbePod("p2"))
	if n := h.m.workerCount(); n != 0 {
		t.Errorf("AddPod after Stop started %d workers", n)
	}
}

func TestReAddAfterRemove(t *testing.T) {
	h := newHarness(t)
	pod := testPod("p1", v1.Container{ReadinessProbe: execProbeSpec("ready")})
	h.status.set(pod.UID, running("abc", t0, "c"))
	h.m.AddPod(pod)
	h.waitIter(pod, "c", Readiness)
	h.m.RemovePod(pod)
	h.m.AddPod(pod) // the old worker may still be ending: a new one replaces it
	h.waitIter(pod, "c", Readiness)
	waitUntil(t, "one worker", func() bool { return h.m.workerCount() == 1 })
	if _, ok := h.m.getWorker(probeKey{pod.UID, "c", Readiness}); !ok {
		t.Fatal("no readiness worker after re-adding the pod")
	}
}

func TestUpdatePodStatus(t *testing.T) {
	run := v1.ContainerState{Running: &v1.ContainerStateRunning{}}
	wait := v1.ContainerState{Waiting: &v1.ContainerStateWaiting{}}
	exit := func(code int32) v1.ContainerState {
		return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}
	}
	type probes struct{ startup, readiness *Result } // nil: no worker; non-nil: worker + cached result (Unknown = none cached)
	res := func(r Result) *Result { return &r }
	tests := []struct {
		name        string
		init        bool // an init container
		sidecar     bool
		state       v1.ContainerState
		probes      probes
		wantStarted bool
		wantReady   bool
	}{
		{name: "no probes, running", state: run, wantStarted: true, wantReady: true},
		{name: "no probes, waiting", state: wait},
		{name: "no probes, exited", state: exit(0)},
		{name: "readiness success", state: run, probes: probes{readiness: res(Success)}, wantStarted: true, wantReady: true},
		{name: "readiness failure", state: run, probes: probes{readiness: res(Failure)}, wantStarted: true},
		{name: "readiness not run yet", state: run, probes: probes{readiness: res(Unknown)}, wantStarted: true},
		{name: "readiness success but not running", state: exit(0), probes: probes{readiness: res(Success)}},
		{name: "startup not run yet", state: run, probes: probes{startup: res(Unknown)}},
		{name: "startup pending", state: run, probes: probes{startup: res(Unknown), readiness: res(Success)}},
		{name: "startup failed", state: run, probes: probes{startup: res(Failure)}},
		{name: "startup success, no readiness", state: run, probes: probes{startup: res(Success)}, wantStarted: true, wantReady: true},
		{name: "startup success, readiness failure", state: run, probes: probes{startup: res(Success), readiness: res(Failure)}, wantStarted: true},
		{name: "startup success, readiness success", state: run, probes: probes{startup: res(Success), readiness: res(Success)}, wantStarted: true, wantReady: true},
		{name: "init container exited 0", init: true, state: exit(0), wantReady: true},
		{name: "init container exited 1", init: true, state: exit(1)},
		{name: "init container running", init: true, state: run, wantStarted: true},
		{name: "sidecar running, readiness success", init: true, sidecar: true, state: run, probes: probes{readiness: res(Success)}, wantStarted: true, wantReady: true},
		{name: "sidecar running, readiness failure", init: true, sidecar: true, state: run, probes: probes{readiness: res(Failure)}, wantStarted: true},
		{name: "sidecar running, no probes", init: true, sidecar: true, state: run, wantStarted: true, wantReady: true},
		{name: "sidecar startup pending", init: true, sidecar: true, state: run, probes: probes{startup: res(Unknown)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			pod := testPod("p1", v1.Container{})
			c := v1.Container{Name: "x"}
			if tc.sidecar {
				c.RestartPolicy = ptr.To(v1.ContainerRestartPolicyAlways)
			}
			cs := v1.ContainerStatus{Name: "x", ContainerID: "nodekit://id-x", State: tc.state, Ready: !tc.wantReady}
			status := &v1.PodStatus{}
			if tc.init {
				pod.Spec.InitContainers = []v1.Container{c}
				status.InitContainerStatuses = []v1.ContainerStatus{cs}
			} else {
				pod.Spec.Containers = []v1.Container{c}
				status.ContainerStatuses = []v1.ContainerStatus{cs}
			}
			// Plant workers (not running) and cached results.
			plant := func(typ ProbeType, r *Result) {
				if r == nil {
					return
				}
				w := newWorker(h.m, probeKey{pod.UID, "x", typ}, pod, v1.Container{Name: "x", LivenessProbe: &v1.Probe{}, ReadinessProbe: &v1.Probe{}, StartupProbe: &v1.Probe{}})
				h.m.workers[w.key] = w
				if *r != Unknown {
					h.m.results[typ].set("id-x", *r, w)
				}
			}
			plant(Startup, tc.probes.startup)
			plant(Readiness, tc.probes.readiness)

			h.m.UpdatePodStatus(pod, status)
			got := status.ContainerStatuses
			if tc.init {
				got = status.InitContainerStatuses
			}
			if got[0].Started == nil || *got[0].Started != tc.wantStarted || got[0].Ready != tc.wantReady {
				t.Errorf("started %v ready %v, want %v %v", ptr.Deref(got[0].Started, false), got[0].Ready, tc.wantStarted, tc.wantReady)
			}
			for _, w := range h.m.workers {
				w.cancel()
			}
			h.m.workers = map[probeKey]*worker{}
		})
	}
}

func TestUpdatePodStatusTriggersReadinessProbe(t *testing.T) {
	h := newHarness(t)
	h.exec.plan("ready", false, true)
	pod := testPod("p1", v1.Container{ReadinessProbe: &v1.Probe{ProbeHandler: execProbeSpec("ready").ProbeHandler, FailureThreshold: 1}})
	st := running("abc", t0, "c")
	h.status.set(pod.UID, st)
	h.m.AddPod(pod)
	h.waitIter(pod, "c", Readiness)
	s := st.DeepCopy()
	h.m.UpdatePodStatus(pod, s)
	if s.ContainerStatuses[0].Ready {
		t.Fatal("ready after a failed readiness probe")
	}
	// Not ready: UpdatePodStatus asked for a probe now, without waiting a period.
	h.waitIter(pod, "c", Readiness)
	if n := len(h.exec.callsOf("ready")); n != 2 {
		t.Fatalf("%d readiness probes, want 2", n)
	}
	s = st.DeepCopy()
	h.m.UpdatePodStatus(pod, s)
	if !s.ContainerStatuses[0].Ready || !*s.ContainerStatuses[0].Started {
		t.Errorf("after a successful probe: ready %v started %v, want true true", s.ContainerStatuses[0].Ready, *s.ContainerStatuses[0].Started)
	}
	if rs := h.drainResults(Readiness); resultsString(rs) != "Failure,Success" {
		t.Errorf("readiness updates %s, want Failure,Success", resultsString(rs))
	}
}

func TestKillGracePeriod(t *testing.T) {
	probe := &v1.Probe{TerminationGracePeriodSeconds: ptr.To[int64](5)}
	withProbes := &v1.Container{LivenessProbe: probe, StartupProbe: probe, ReadinessProbe: probe}
	tests := []struct {
		name     string
		deletion *int64
		podTGPS  *int64
		c        *v1.Container
		typ      ProbeType
		want     int64
	}{
		{name: "nothing set: minimum", c: &v1.Container{}, typ: Liveness, want: 2},
		{name: "pod value", podTGPS: ptr.To[int64](30), c: &v1.Container{}, typ: Liveness, want: 30},
		{name: "liveness probe overrides the pod", podTGPS: ptr.To[int64](30), c: withProbes, typ: Liveness, want: 5},
		{name: "startup probe overrides the pod", podTGPS: ptr.To[int64](30), c: withProbes, typ: Startup, want: 5},
		{name: "readiness probe value is not used", podTGPS: ptr.To[int64](30), c: withProbes, typ: Readiness, want: 30},
		{name: "deletion grace period wins", deletion: ptr.To[int64](1), podTGPS: ptr.To[int64](30), c: withProbes, typ: Liveness, want: 1},
		{name: "pod zero", podTGPS: ptr.To[int64](0), c: &v1.Container{}, typ: Liveness, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionGracePeriodSeconds: tc.deletion},
				Spec: v1.PodSpec{TerminationGracePeriodSeconds: tc.podTGPS}}
			if got := KillGracePeriod(pod, tc.c, tc.typ); got != tc.want {
				t.Errorf("KillGracePeriod = %d, want %d", got, tc.want)
			}
		})
	}
}

// fakeMetrics records metric calls.
type fakeMetrics struct {
	mu        sync.Mutex
	completed []string
	durations []time.Duration
	forgotten []MetricLabels
}

func (f *fakeMetrics) ProbeCompleted(l MetricLabels, result string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.completed = append(f.completed, fmt.Sprintf("%s/%s/%s/%s/%s=%s", l.ProbeType, l.Namespace, l.Pod, l.Container, l.PodUID, result))
}

func (f *fakeMetrics) ProbeDuration(_ MetricLabels, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.durations = append(f.durations, d)
}

func (f *fakeMetrics) Forget(l MetricLabels) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = append(f.forgotten, l)
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	fm := &fakeMetrics{}
	h.m.opts.Metrics = fm
	h.exec.plan("live", true, false)
	pod := testPod("p1", v1.Container{LivenessProbe: execProbeSpec("live")})
	h.status.set(pod.UID, running("abc", t0, "c"))
	h.m.AddPod(pod)
	h.waitIter(pod, "c", Liveness)
	h.step(10*time.Second, pod, "c", Liveness)
	h.m.RemovePod(pod)
	waitUntil(t, "the worker to end", func() bool { return h.m.workerCount() == 0 })

	fm.mu.Lock()
	defer fm.mu.Unlock()
	want := []string{"Liveness/ns/pod-p1/c/p1=successful", "Liveness/ns/pod-p1/c/p1=failed"}
	if !slices.Equal(fm.completed, want) {
		t.Errorf("probe_total calls %v, want %v", fm.completed, want)
	}
	if len(fm.durations) != 1 {
		t.Errorf("%d duration observations, want 1 (successes only)", len(fm.durations))
	}
	if len(fm.forgotten) != 1 || fm.forgotten[0].Pod != "pod-p1" {
		t.Errorf("forgotten %v, want the worker's labels", fm.forgotten)
	}
}

// New rejects options without a status source instead of returning a manager
// whose workers would panic every period.
func TestNewValidatesOptions(t *testing.T) {
	var nilStatus *fakeStatus
	for name, o := range map[string]Options{
		"no status":     {},
		"nil *T status": {Status: nilStatus},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := New(o)
			if err == nil {
				m.Stop()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "Options.Status") {
				t.Fatalf("error %q does not name Options.Status", err)
			}
		})
	}
	m, err := New(Options{Status: &fakeStatus{}})
	if err != nil {
		t.Fatal(err)
	}
	m.Stop()
}
