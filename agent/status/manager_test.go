package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // poll interval, not a wait for the condition
	}
}

type put struct {
	uid     types.UID
	version uint64
	phase   v1.PodPhase
	message string
}

// testSink records Puts. It fails the first fail Puts and blocks the Puts of
// gated pods until their gate is closed (or the context ends).
type testSink struct {
	MemorySink
	mu      sync.Mutex
	puts    []put
	fail    int
	gates   map[types.UID]chan struct{}
	entered chan types.UID
	deletes []types.UID
}

func newTestSink() *testSink {
	return &testSink{gates: map[types.UID]chan struct{}{}, entered: make(chan types.UID, 100)}
}

func (s *testSink) Put(ctx context.Context, pod *v1.Pod, status v1.PodStatus, version uint64) error {
	s.mu.Lock()
	s.puts = append(s.puts, put{pod.UID, version, status.Phase, status.Message})
	gate := s.gates[pod.UID]
	failing := s.fail > 0
	if failing {
		s.fail--
	}
	s.mu.Unlock()
	select {
	case s.entered <- pod.UID:
	case <-ctx.Done():
		return ctx.Err()
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if failing {
		return errors.New("sink unavailable")
	}
	return s.MemorySink.Put(ctx, pod, status, version)
}

func (s *testSink) Delete(ctx context.Context, uid types.UID) error {
	s.mu.Lock()
	s.deletes = append(s.deletes, uid)
	s.mu.Unlock()
	return s.MemorySink.Delete(ctx, uid)
}

func (s *testSink) versions(uid types.UID) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for _, p := range s.puts {
		if p.uid == uid {
			out = append(out, p.version)
		}
	}
	return out
}

func (s *testSink) holds(uid types.UID, version uint64) bool {
	e, ok := s.Get(uid)
	return ok && e.Version == version
}

type testMetrics struct {
	mu   sync.Mutex
	errs int
	oks  int
}

func (m *testMetrics) ObserveSync(_ time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.errs++
	} else {
		m.oks++
	}
}

func podNamed(name string, opts ...podOpt) *v1.Pod {
	p := testPod(append([]podOpt{withContainers("a")}, opts...)...)
	p.Name, p.UID = name, types.UID("uid-"+name)
	return p
}

// runningStatus is a generated status of a pod whose container "a" runs.
func runningStatus(pod *v1.Pod) v1.PodStatus {
	return Generate(pod, rstatus(running("a", "a1", 1)), v1.PodStatus{}, opts())
}

func newTestManager(t *testing.T, sink Sink, mopts ...ManagerOption) (Manager, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	m := NewManager(sink, clk, quiet, mopts...)
	t.Cleanup(m.Stop)
	return m, clk
}

func TestManagerVersioning(t *testing.T) {
	m, clk := newTestManager(t, nil)
	pod := podNamed("p")
	base := runningStatus(pod)
	m.SetPodStatus(pod, base)
	first, _ := m.GetPodStatus(pod.UID)

	change := func(f func(*v1.PodStatus)) v1.PodStatus {
		s := *base.DeepCopy()
		f(&s)
		return s
	}
	steps := []struct {
		name        string
		status      v1.PodStatus
		wantVersion uint64
	}{
		{"same status", base, 1},
		{"probe time only", change(func(s *v1.PodStatus) { s.Conditions[0].LastProbeTime = metav1.NewTime(t0.Add(time.Hour)) }), 1},
		{"transition time only", change(func(s *v1.PodStatus) { s.Conditions[0].LastTransitionTime = metav1.NewTime(t0.Add(time.Hour)) }), 1},
		{"start time (kept anyway)", change(func(s *v1.PodStatus) { s.StartTime = ptr(metav1.NewTime(t0.Add(time.Hour))) }), 1},
		{"sub-second timestamp", change(func(s *v1.PodStatus) {
			s.ContainerStatuses[0].State.Running.StartedAt = metav1.NewTime(s.ContainerStatuses[0].State.Running.StartedAt.Add(300 * time.Millisecond))
		}), 1},
		{"condition message", change(func(s *v1.PodStatus) { s.Conditions[0].Message = "changed" }), 2},
		{"restart count", change(func(s *v1.PodStatus) { s.ContainerStatuses[0].RestartCount = 5 }), 3},
		{"restart count again", change(func(s *v1.PodStatus) { s.ContainerStatuses[0].RestartCount = 5 }), 3},
		{"a condition the kubelet does not own", change(func(s *v1.PodStatus) {
			s.ContainerStatuses[0].RestartCount = 5
			s.Conditions = append(s.Conditions, v1.PodCondition{Type: "example.com/x", Status: v1.ConditionTrue})
		}), 3},
		{"phase", change(func(s *v1.PodStatus) {
			s.ContainerStatuses[0].RestartCount = 5
			s.Phase = v1.PodPending
		}), 4},
	}
	for _, st := range steps {
		clk.Step(time.Minute)
		m.SetPodStatus(pod, st.status)
		if got := m.Version(pod.UID); got != st.wantVersion {
			t.Fatalf("%s: version = %d, want %d", st.name, got, st.wantVersion)
		}
	}
	got, ok := m.GetPodStatus(pod.UID)
	if !ok || !got.StartTime.Time.Equal(base.StartTime.Time) {
		t.Errorf("start time = %v, want kept %v", got.StartTime, base.StartTime)
	}
	if lt := condition(got, v1.PodReady).LastTransitionTime.Time; !lt.Equal(condition(first, v1.PodReady).LastTransitionTime.Time) {
		t.Errorf("Ready transition time moved to %v", lt)
	}
	got.Phase = v1.PodFailed // a copy: the manager's status does not change
	if again, _ := m.GetPodStatus(pod.UID); again.Phase != v1.PodPending {
		t.Errorf("GetPodStatus returned the manager's own status")
	}
	if m.Version("nope") != 0 {
		t.Error("unknown pod has a version")
	}
	if _, ok := m.GetPodStatus("nope"); ok {
		t.Error("unknown pod has a status")
	}
}

func TestManagerTerminalPhaseSticks(t *testing.T) {
	terminated := func(code int32) v1.ContainerStatus {
		return v1.ContainerStatus{Name: "a", ContainerID: "fake://a1", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code, ContainerID: "fake://a1"}}}
	}
	runningCS := v1.ContainerStatus{Name: "a", ContainerID: "fake://a2", State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}}
	tests := []struct {
		name        string
		restart     v1.RestartPolicy
		first       v1.PodStatus
		next        v1.PodStatus
		wantPhase   v1.PodPhase
		wantVersion uint64
		wantRunning bool
	}{
		{name: "succeeded stays succeeded", restart: v1.RestartPolicyAlways,
			first: v1.PodStatus{Phase: v1.PodSucceeded, ContainerStatuses: cs(terminated(0))}, next: v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: cs(runningCS)},
			wantPhase: v1.PodSucceeded, wantVersion: 2, wantRunning: true},
		{name: "failed stays failed", restart: v1.RestartPolicyAlways,
			first: v1.PodStatus{Phase: v1.PodFailed, Reason: "Evicted", ContainerStatuses: cs(terminated(1))}, next: v1.PodStatus{Phase: v1.PodPending},
			wantPhase: v1.PodFailed, wantVersion: 2},
		{name: "failed does not become succeeded", restart: v1.RestartPolicyNever,
			first: v1.PodStatus{Phase: v1.PodFailed, ContainerStatuses: cs(terminated(1))}, next: v1.PodStatus{Phase: v1.PodSucceeded, ContainerStatuses: cs(terminated(1))},
			wantPhase: v1.PodFailed, wantVersion: 1},
		{name: "never: terminated container may not run again", restart: v1.RestartPolicyNever,
			first: v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: cs(terminated(0))}, next: v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: cs(runningCS)},
			wantPhase: v1.PodRunning, wantVersion: 1},
		{name: "onfailure: succeeded container may not run again", restart: v1.RestartPolicyOnFailure,
			first: v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: cs(terminated(0))}, next: v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: cs(runningCS)},
			wantPhase: v1.PodRunning, wantVersion: 1},
		{name: "onfailure: failed container restarts", restart: v1.RestartPolicyOnFailure,
			first: v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: cs(terminated(1))}, next: v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: cs(runningCS)},
			wantPhase: v1.PodRunning, wantVersion: 2, wantRunning: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTestManager(t, nil)
			pod := podNamed("p", withRestart(tc.restart))
			m.SetPodStatus(pod, tc.first)
			m.SetPodStatus(pod, tc.next)
			got, _ := m.GetPodStatus(pod.UID)
			if got.Phase != tc.wantPhase || m.Version(pod.UID) != tc.wantVersion {
				t.Errorf("phase %s version %d, want %s %d", got.Phase, m.Version(pod.UID), tc.wantPhase, tc.wantVersion)
			}
			if tc.first.Reason != "" && got.Reason != tc.first.Reason {
				t.Errorf("reason = %q, want kept %q", got.Reason, tc.first.Reason)
			}
			if isRunning := len(got.ContainerStatuses) > 0 && got.ContainerStatuses[0].State.Running != nil; isRunning != tc.wantRunning {
				t.Errorf("container running = %v, want %v", isRunning, tc.wantRunning)
			}
		})
	}
}

func TestManagerProbeResults(t *testing.T) {
	probe := &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}
	pod := testPod(withSidecars("s"), withContainers("a"), withReadinessGates("example.com/lb"), func(p *v1.Pod) {
		p.Spec.InitContainers[0].ReadinessProbe = probe
		p.Spec.Containers[0].ReadinessProbe = probe
		p.Status.Conditions = []v1.PodCondition{{Type: "example.com/lb", Status: v1.ConditionTrue}}
	})
	m, clk := newTestManager(t, nil)
	s := Generate(pod, rstatus(running("s", "s1", 1), running("a", "a1", 10)), v1.PodStatus{}, opts())
	m.SetPodStatus(pod, s)

	steps := []struct {
		name        string
		do          func()
		wantVersion uint64
		containers  v1.ConditionStatus
		ready       wantCond
	}{
		{"initially unready", func() {}, 1, v1.ConditionFalse,
			wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [s a]"}},
		{"app ready", func() { m.SetContainerReadiness(pod.UID, "fake://a1", true) }, 2, v1.ConditionFalse,
			wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [s]"}},
		{"app ready again", func() { m.SetContainerReadiness(pod.UID, "fake://a1", true) }, 2, v1.ConditionFalse,
			wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [s]"}},
		{"unknown container", func() { m.SetContainerReadiness(pod.UID, "fake://zzz", true) }, 2, v1.ConditionFalse,
			wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [s]"}},
		{"unknown pod", func() { m.SetContainerReadiness("nope", "fake://a1", true) }, 2, v1.ConditionFalse,
			wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [s]"}},
		{"sidecar ready by bare id", func() { m.SetContainerReadiness(pod.UID, "s1", true) }, 3, v1.ConditionTrue, wantCond{v1.ConditionTrue, "", ""}},
		{"app unready", func() { m.SetContainerReadiness(pod.UID, "a1", false) }, 4, v1.ConditionFalse,
			wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [a]"}},
	}
	var readySince time.Time
	for _, st := range steps {
		clk.Step(time.Minute)
		st.do()
		got, _ := m.GetPodStatus(pod.UID)
		if v := m.Version(pod.UID); v != st.wantVersion {
			t.Fatalf("%s: version %d, want %d", st.name, v, st.wantVersion)
		}
		if c := condition(got, v1.ContainersReady); c.Status != st.containers {
			t.Fatalf("%s: ContainersReady %s, want %s", st.name, c.Status, st.containers)
		}
		ready := condition(got, v1.PodReady)
		checkCond(t, *ready, st.ready)
		if st.name == "sidecar ready by bare id" {
			readySince = clk.Now()
			if !ready.LastTransitionTime.Time.Equal(readySince) {
				t.Errorf("Ready transition time %v, want %v", ready.LastTransitionTime, readySince)
			}
		}
	}

	// Startup results set Started and version the status.
	m.SetContainerStartup(pod.UID, "fake://a1", false)
	got, _ := m.GetPodStatus(pod.UID)
	a, _ := findStatus(got.ContainerStatuses, "a")
	if a.Started == nil || *a.Started || m.Version(pod.UID) != 5 {
		t.Fatalf("after startup=false: started %v version %d", a.Started, m.Version(pod.UID))
	}
	m.SetContainerStartup(pod.UID, "fake://a1", false)
	if m.Version(pod.UID) != 5 {
		t.Errorf("unchanged startup bumped the version to %d", m.Version(pod.UID))
	}

	// A regenerated status keeps what the probes said (no probe manager wired).
	regen := Generate(pod, rstatus(running("s", "s1", 1), running("a", "a1", 10)), got, opts())
	if sc, _ := findStatus(regen.InitContainerStatuses, "s"); !sc.Ready {
		t.Errorf("regenerated status lost the sidecar's readiness")
	}
}

func TestManagerTerminatePod(t *testing.T) {
	waiting := vWaiting
	tests := []struct {
		name      string
		pod       *v1.Pod
		status    *v1.PodStatus // nil: not cached, pod.Status is used
		wantPhase v1.PodPhase
		wantApps  []string // "terminated=<code>" or "waiting"
		wantInits []string
	}{
		{name: "running app container", pod: podNamed("p"),
			status:    &v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: cs(vRunning("a"))},
			wantPhase: v1.PodFailed, wantApps: []string{"terminated=137"}},
		{name: "succeeded stays succeeded", pod: podNamed("p", withRestart(v1.RestartPolicyNever)),
			status:    &v1.PodStatus{Phase: v1.PodSucceeded, ContainerStatuses: cs(vExited("a", 0))},
			wantPhase: v1.PodSucceeded, wantApps: []string{"terminated=0"}},
		{name: "not cached: the pod's own status", pod: podNamed("p", func(p *v1.Pod) { p.Status = v1.PodStatus{Phase: v1.PodPending, ContainerStatuses: cs(waiting("a"))} }),
			wantPhase: v1.PodFailed, wantApps: []string{"terminated=137"}},
		{name: "init containers: only those that started fail", pod: podNamed("p", withInit("i1", "i2", "i3")),
			status: &v1.PodStatus{Phase: v1.PodPending, ContainerStatuses: cs(waiting("a")),
				InitContainerStatuses: cs(vExited("i1", 0), vRunning("i2"), waiting("i3"))},
			wantPhase: v1.PodFailed, wantApps: []string{"waiting"}, wantInits: []string{"terminated=0", "terminated=137", "waiting"}},
		{name: "initialized pod: waiting app containers fail", pod: podNamed("p", withInit("i1")),
			status: &v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: cs(waiting("a")),
				InitContainerStatuses: cs(vExited("i1", 0))},
			wantPhase: v1.PodFailed, wantApps: []string{"terminated=137"}, wantInits: []string{"terminated=0"}},
	}
	describe := func(list []v1.ContainerStatus) []string {
		var out []string
		for _, c := range list {
			switch {
			case c.State.Terminated != nil:
				out = append(out, fmt.Sprintf("terminated=%d", c.State.Terminated.ExitCode))
			case c.State.Waiting != nil:
				out = append(out, "waiting")
			default:
				out = append(out, "running")
			}
		}
		return out
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTestManager(t, nil)
			if tc.status != nil {
				m.SetPodStatus(tc.pod, *tc.status)
			}
			before := m.Version(tc.pod.UID)
			m.TerminatePod(tc.pod)
			got, _ := m.GetPodStatus(tc.pod.UID)
			if got.Phase != tc.wantPhase {
				t.Errorf("phase = %s, want %s", got.Phase, tc.wantPhase)
			}
			if a, w := fmt.Sprint(describe(got.ContainerStatuses)), fmt.Sprint(tc.wantApps); a != w {
				t.Errorf("app containers %s, want %s", a, w)
			}
			if a, w := fmt.Sprint(describe(got.InitContainerStatuses)), fmt.Sprint(tc.wantInits); a != w {
				t.Errorf("init containers %s, want %s", a, w)
			}
			if m.Version(tc.pod.UID) != before+1 {
				t.Errorf("version %d, want %d", m.Version(tc.pod.UID), before+1)
			}
			if r := condition(got, v1.PodReady); r == nil || r.Status != v1.ConditionFalse || r.Reason != terminalReason(tc.wantPhase) {
				t.Errorf("Ready = %+v, want False/%s", r, terminalReason(tc.wantPhase))
			}
		})
	}
}

func TestManagerSinkOrderingWithSlowSink(t *testing.T) {
	sink := newTestSink()
	metrics := &testMetrics{}
	m, _ := newTestManager(t, sink, WithMetrics(metrics))
	slow, fast := podNamed("slow"), podNamed("fast")
	gate := make(chan struct{})
	sink.gates[slow.UID] = gate
	m.Start()

	status := func(pod *v1.Pod, i int) v1.PodStatus {
		s := runningStatus(pod)
		s.Message = fmt.Sprintf("update %d", i)
		return s
	}
	m.SetPodStatus(slow, status(slow, 1))
	if uid := <-sink.entered; uid != slow.UID {
		t.Fatalf("first Put for %s", uid)
	}
	// While version 1 is being written, more changes arrive.
	for i := 2; i <= 5; i++ {
		m.SetPodStatus(slow, status(slow, i))
	}
	if v := m.Version(slow.UID); v != 5 {
		t.Fatalf("version = %d, want 5", v)
	}
	// Another pod is not held up by the slow one.
	m.SetPodStatus(fast, status(fast, 1))
	eventually(t, "the fast pod's status in the sink", func() bool { return sink.holds(fast.UID, 1) })
	if _, ok := sink.Get(slow.UID); ok {
		t.Fatal("the slow pod's status reached the sink before its Put returned")
	}

	close(gate)
	eventually(t, "the slow pod's newest status in the sink", func() bool { return sink.holds(slow.UID, 5) })
	if got := sink.versions(slow.UID); fmt.Sprint(got) != "[1 5]" {
		t.Errorf("Puts of the slow pod had versions %v, want [1 5] (in order, newest wins)", got)
	}
	if e, _ := sink.Get(slow.UID); e.Status.Message != "update 5" {
		t.Errorf("sink holds %q, want the newest status", e.Status.Message)
	}
	metrics.mu.Lock()
	defer metrics.mu.Unlock()
	if metrics.oks != 3 || metrics.errs != 0 {
		t.Errorf("metrics saw %d ok and %d failed writes, want 3 and 0", metrics.oks, metrics.errs)
	}
}

func TestManagerSinkRetries(t *testing.T) {
	sink := newTestSink()
	sink.fail = 2
	metrics := &testMetrics{}
	m, clk := newTestManager(t, sink, WithMetrics(metrics))
	pod := podNamed("p")
	m.Start()

	m.SetPodStatus(pod, runningStatus(pod))
	<-sink.entered
	eventually(t, "the writer waiting to retry", clk.HasWaiters)
	// A newer status arrives during the back-off: the retry writes it.
	s2 := runningStatus(pod)
	s2.Message = "newer"
	m.SetPodStatus(pod, s2)
	clk.Step(retryInitial)
	<-sink.entered
	eventually(t, "the writer waiting to retry again", clk.HasWaiters)
	// The back-off doubled: one initial period is not enough any more.
	clk.Step(retryInitial)
	if !clk.HasWaiters() {
		t.Fatal("retried after one initial back-off period, want the back-off doubled")
	}
	clk.Step(retryInitial)
	eventually(t, "the status in the sink", func() bool { return sink.holds(pod.UID, 2) })
	if got := sink.versions(pod.UID); fmt.Sprint(got) != "[1 2 2]" {
		t.Errorf("Put versions %v, want [1 2 2]", got)
	}
	metrics.mu.Lock()
	defer metrics.mu.Unlock()
	if metrics.errs != 2 || metrics.oks != 1 {
		t.Errorf("metrics saw %d failed and %d ok writes, want 2 and 1", metrics.errs, metrics.oks)
	}
}

func TestManagerStartStop(t *testing.T) {
	sink := newTestSink()
	m, _ := newTestManager(t, sink)
	pod := podNamed("p")
	m.SetPodStatus(pod, runningStatus(pod))
	s2 := runningStatus(pod)
	s2.Message = "second"
	m.SetPodStatus(pod, s2)
	if n := len(sink.versions(pod.UID)); n != 0 {
		t.Fatalf("%d Puts before Start", n)
	}
	m.Start()
	eventually(t, "the status in the sink", func() bool { return sink.holds(pod.UID, 2) })
	if got := sink.versions(pod.UID); fmt.Sprint(got) != "[2]" {
		t.Errorf("Put versions %v, want [2]", got)
	}

	// Stop ends a Put that hangs.
	blocked := podNamed("blocked")
	sink.mu.Lock()
	sink.gates[blocked.UID] = make(chan struct{})
	sink.mu.Unlock()
	m.SetPodStatus(blocked, runningStatus(blocked))
	for uid := range sink.entered {
		if uid == blocked.UID {
			break
		}
	}
	done := make(chan struct{})
	go func() { m.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return while a Put was blocked")
	}
}

func TestManagerRemoveOrphanedStatuses(t *testing.T) {
	sink := newTestSink()
	m, _ := newTestManager(t, sink)
	keep, drop := podNamed("keep"), podNamed("drop")
	m.Start()
	m.SetPodStatus(keep, runningStatus(keep))
	m.SetPodStatus(drop, runningStatus(drop))
	eventually(t, "both statuses in the sink", func() bool { return sink.holds(keep.UID, 1) && sink.holds(drop.UID, 1) })

	m.RemoveOrphanedStatuses(map[types.UID]bool{keep.UID: true})
	if _, ok := m.GetPodStatus(drop.UID); ok || m.Version(drop.UID) != 0 {
		t.Error("orphaned status still known")
	}
	if _, ok := m.GetPodStatus(keep.UID); !ok {
		t.Error("kept status forgotten")
	}
	eventually(t, "the orphan deleted from the sink", func() bool { _, ok := sink.Get(drop.UID); return !ok })
	if _, ok := sink.Get(keep.UID); !ok {
		t.Error("kept pod deleted from the sink")
	}

	// The pod comes back: it starts afresh and the sink gets it again.
	m.SetPodStatus(drop, runningStatus(drop))
	eventually(t, "the returning pod in the sink", func() bool { e, ok := sink.Get(drop.UID); return ok && e.Version >= 1 })

	// Without Start, orphans are simply forgotten.
	m2, _ := newTestManager(t, nil)
	m2.SetPodStatus(drop, runningStatus(drop))
	m2.RemoveOrphanedStatuses(nil)
	if m2.Version(drop.UID) != 0 {
		t.Error("orphan kept by a manager that was never started")
	}
}

func TestMemorySink(t *testing.T) {
	var s MemorySink
	ctx := context.Background()
	a, b := podNamed("a"), podNamed("b")
	b.Namespace = "aaa"
	for _, step := range []struct {
		pod     *v1.Pod
		version uint64
		msg     string
	}{{a, 2, "two"}, {a, 1, "stale"}, {b, 1, "b"}, {a, 3, "three"}} {
		if err := s.Put(ctx, step.pod, v1.PodStatus{Message: step.msg}, step.version); err != nil {
			t.Fatal(err)
		}
	}
	e, ok := s.Get(a.UID)
	if !ok || e.Version != 3 || e.Status.Message != "three" {
		t.Errorf("a = %+v, want version 3", e)
	}
	list := s.List()
	if len(list) != 2 || list[0].Pod.Name != "b" || list[1].Pod.Name != "a" {
		t.Errorf("List not ordered by namespace/name: %+v", list)
	}
	if err := s.Delete(ctx, a.UID); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get(a.UID); ok {
		t.Error("deleted pod still held")
	}
}

// TestManagerRewrite: an unchanged status is written again on Rewrite (same
// version), and only then; an unknown pod is ignored.
func TestManagerRewrite(t *testing.T) {
	sink := newTestSink()
	m, _ := newTestManager(t, sink)
	m.Start()
	pod := podNamed("p")
	m.SetPodStatus(pod, runningStatus(pod))
	eventually(t, "the first write", func() bool { return len(sink.versions(pod.UID)) == 1 })
	m.SetPodStatus(pod, runningStatus(pod))
	m.Rewrite("unknown")
	m.Rewrite(pod.UID)
	eventually(t, "the rewrite", func() bool { return len(sink.versions(pod.UID)) == 2 })
	if v := sink.versions(pod.UID); v[0] != v[1] {
		t.Errorf("versions %v: a rewrite keeps the version", v)
	}
}
