package status

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/pleg"
)

func vReady(name string, ready bool) v1.ContainerStatus {
	s := vRunning(name)
	s.Ready = ready
	return s
}

type wantCond struct {
	status  v1.ConditionStatus
	reason  string
	message string
}

func checkCond(t *testing.T, got v1.PodCondition, want wantCond) {
	t.Helper()
	if got.Status != want.status || got.Reason != want.reason || got.Message != want.message {
		t.Errorf("condition %s = {%s %q %q}, want {%s %q %q}", got.Type, got.Status, got.Reason, got.Message, want.status, want.reason, want.message)
	}
}

// TestContainersReadyAndReady ports the cases of the kubelet's
// TestGenerateContainersReadyCondition and TestGeneratePodReadyCondition.
func TestContainersReadyAndReady(t *testing.T) {
	gateCond := func(s v1.ConditionStatus) []v1.PodCondition {
		return []v1.PodCondition{{Type: "example.com/gate", Status: s}}
	}
	tests := []struct {
		name       string
		pod        *v1.Pod
		conditions []v1.PodCondition
		statuses   []v1.ContainerStatus
		phase      v1.PodPhase
		containers wantCond
		ready      wantCond
	}{
		{name: "no statuses", pod: testPod(withContainers("a")), statuses: nil, phase: v1.PodPending,
			containers: wantCond{v1.ConditionFalse, ReasonUnknownContainerStatuses, ""},
			ready:      wantCond{v1.ConditionFalse, ReasonUnknownContainerStatuses, ""}},
		{name: "all ready", pod: testPod(withContainers("a", "b")), statuses: cs(vReady("a", true), vReady("b", true)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionTrue, "", ""}, ready: wantCond{v1.ConditionTrue, "", ""}},
		{name: "one unknown", pod: testPod(withContainers("a", "b")), statuses: cs(vReady("a", true)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unknown status: [b]"},
			ready:      wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unknown status: [b]"}},
		{name: "one unready", pod: testPod(withContainers("a", "b")), statuses: cs(vReady("a", true), vReady("b", false)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [b]"},
			ready:      wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [b]"}},
		{name: "unknown and unready", pod: testPod(withContainers("a", "b", "c")), statuses: cs(vReady("a", false), vReady("b", true)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unknown status: [c], containers with unready status: [a]"},
			ready:      wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unknown status: [c], containers with unready status: [a]"}},
		{name: "succeeded", pod: testPod(withContainers("a")), statuses: cs(vExited("a", 0)), phase: v1.PodSucceeded,
			containers: wantCond{v1.ConditionFalse, ReasonPodCompleted, ""}, ready: wantCond{v1.ConditionFalse, ReasonPodCompleted, ""}},
		{name: "succeeded with an unknown container", pod: testPod(withContainers("a", "b")), statuses: cs(vExited("a", 0)), phase: v1.PodSucceeded,
			containers: wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unknown status: [b], containers with unready status: [a]"},
			ready:      wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unknown status: [b], containers with unready status: [a]"}},
		{name: "failed even if ready", pod: testPod(withContainers("a")), statuses: cs(vReady("a", true)), phase: v1.PodFailed,
			containers: wantCond{v1.ConditionFalse, ReasonPodFailed, ""}, ready: wantCond{v1.ConditionFalse, ReasonPodFailed, ""}},
		{name: "regular init container readiness does not count", pod: testPod(withInit("i"), withContainers("a")), statuses: cs(vExited("i", 0), vReady("a", true)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionTrue, "", ""}, ready: wantCond{v1.ConditionTrue, "", ""}},
		{name: "unready sidecar", pod: testPod(withSidecars("s"), withContainers("a")), statuses: cs(vReady("s", false), vReady("a", true)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [s]"},
			ready:      wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [s]"}},
		{name: "unknown sidecar", pod: testPod(withSidecars("s"), withContainers("a")), statuses: cs(vReady("a", true)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unknown status: [s]"},
			ready:      wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unknown status: [s]"}},
		{name: "ready sidecar", pod: testPod(withSidecars("s"), withContainers("a")), statuses: cs(vReady("s", true), vReady("a", true)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionTrue, "", ""}, ready: wantCond{v1.ConditionTrue, "", ""}},
		{name: "readiness gate missing", pod: testPod(withContainers("a"), withReadinessGates("example.com/gate")), statuses: cs(vReady("a", true)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionTrue, "", ""},
			ready:      wantCond{v1.ConditionFalse, ReasonReadinessGatesNotReady, `corresponding condition of pod readiness gate "example.com/gate" does not exist.`}},
		{name: "readiness gate false", pod: testPod(withContainers("a"), withReadinessGates("example.com/gate")), conditions: gateCond(v1.ConditionFalse), statuses: cs(vReady("a", true)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionTrue, "", ""},
			ready:      wantCond{v1.ConditionFalse, ReasonReadinessGatesNotReady, `the status of pod readiness gate "example.com/gate" is not "True", but False`}},
		{name: "readiness gate true", pod: testPod(withContainers("a"), withReadinessGates("example.com/gate")), conditions: gateCond(v1.ConditionTrue), statuses: cs(vReady("a", true)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionTrue, "", ""}, ready: wantCond{v1.ConditionTrue, "", ""}},
		{name: "readiness gate true but container unready", pod: testPod(withContainers("a"), withReadinessGates("example.com/gate")), conditions: gateCond(v1.ConditionTrue), statuses: cs(vReady("a", false)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [a]"},
			ready:      wantCond{v1.ConditionFalse, ReasonContainersNotReady, "containers with unready status: [a]"}},
		{name: "two gates, one missing one unknown", pod: testPod(withContainers("a"), withReadinessGates("g1", "g2")), conditions: []v1.PodCondition{{Type: "g2", Status: v1.ConditionUnknown}}, statuses: cs(vReady("a", true)), phase: v1.PodRunning,
			containers: wantCond{v1.ConditionTrue, "", ""},
			ready:      wantCond{v1.ConditionFalse, ReasonReadinessGatesNotReady, `corresponding condition of pod readiness gate "g1" does not exist., the status of pod readiness gate "g2" is not "True", but Unknown`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkCond(t, containersReadyCondition(tc.pod, tc.statuses, tc.phase), tc.containers)
			checkCond(t, podReadyCondition(tc.pod, tc.conditions, tc.statuses, tc.phase), tc.ready)
		})
	}
}

// TestInitialized ports the cases of the kubelet's TestGeneratePodInitializedCondition.
func TestInitialized(t *testing.T) {
	initDone := func(name string) v1.ContainerStatus { s := vExited(name, 0); s.Ready = true; return s }
	tests := []struct {
		name     string
		pod      *v1.Pod
		statuses []v1.ContainerStatus
		phase    v1.PodPhase
		want     wantCond
	}{
		{name: "no init containers", pod: testPod(withContainers("a")), statuses: cs(vWaiting("a")), phase: v1.PodPending, want: wantCond{v1.ConditionTrue, "", ""}},
		{name: "no init containers, no statuses", pod: testPod(withContainers("a")), phase: v1.PodPending, want: wantCond{v1.ConditionTrue, "", ""}},
		{name: "no statuses", pod: testPod(withInit("i"), withContainers("a")), phase: v1.PodPending, want: wantCond{v1.ConditionFalse, ReasonUnknownContainerStatuses, ""}},
		{name: "init done", pod: testPod(withInit("i"), withContainers("a")), statuses: cs(initDone("i"), vWaiting("a")), phase: v1.PodPending, want: wantCond{v1.ConditionTrue, "", ""}},
		{name: "init running", pod: testPod(withInit("i"), withContainers("a")), statuses: cs(vRunning("i"), vWaiting("a")), phase: v1.PodPending,
			want: wantCond{v1.ConditionFalse, ReasonContainersNotInitialized, "containers with incomplete status: [i]"}},
		{name: "init missing and incomplete", pod: testPod(withInit("i", "j"), withContainers("a")), statuses: cs(vExited("i", 1), vWaiting("a")), phase: v1.PodPending,
			want: wantCond{v1.ConditionFalse, ReasonContainersNotInitialized, "containers with unknown status: [j], containers with incomplete status: [i]"}},
		{name: "succeeded", pod: testPod(withInit("i"), withContainers("a")), statuses: cs(vExited("i", 0), vExited("a", 0)), phase: v1.PodSucceeded, want: wantCond{v1.ConditionTrue, ReasonPodCompleted, ""}},
		{name: "app container started: initialized before", pod: testPod(withInit("i"), withContainers("a")), statuses: cs(vBackOff("i", 1), vRunning("a")), phase: v1.PodRunning, want: wantCond{v1.ConditionTrue, "", ""}},
		{name: "sidecar started", pod: testPod(withSidecars("s"), withContainers("a")), statuses: cs(vStarted("s", true), vWaiting("a")), phase: v1.PodPending, want: wantCond{v1.ConditionTrue, "", ""}},
		{name: "sidecar running not started", pod: testPod(withSidecars("s"), withContainers("a")), statuses: cs(vStarted("s", false), vWaiting("a")), phase: v1.PodPending,
			want: wantCond{v1.ConditionFalse, ReasonContainersNotInitialized, "containers with incomplete status: [s]"}},
		{name: "sidecar ready but started unknown", pod: testPod(withSidecars("s"), withContainers("a")), statuses: cs(vReady("s", true), vWaiting("a")), phase: v1.PodPending,
			want: wantCond{v1.ConditionFalse, ReasonContainersNotInitialized, "containers with incomplete status: [s]"}},
		{name: "sidecar restarting after apps started", pod: testPod(withSidecars("s"), withContainers("a")), statuses: cs(vBackOff("s", 1), vRunning("a")), phase: v1.PodRunning, want: wantCond{v1.ConditionTrue, "", ""}},
		{name: "sidecar started, init after it done", pod: testPod(withSidecars("s"), withInit("i"), withContainers("a")), statuses: cs(vStarted("s", true), initDone("i"), vWaiting("a")), phase: v1.PodPending, want: wantCond{v1.ConditionTrue, "", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkCond(t, initializedCondition(tc.pod, tc.statuses, tc.phase), tc.want)
		})
	}
}

func TestReadyToStartContainers(t *testing.T) {
	hostNet := func(p *v1.Pod) { p.Spec.HostNetwork = true }
	nodeNS := func(s *runtimeapi.PodSandboxStatus) *runtimeapi.PodSandboxStatus {
		s.Linux.Namespaces.Options.Network = runtimeapi.NamespaceMode_NODE
		return s
	}
	tests := []struct {
		name      string
		pod       *v1.Pod
		sandboxes []*runtimeapi.PodSandboxStatus
		want      v1.ConditionStatus
	}{
		{name: "no sandbox", pod: testPod(withContainers("a")), want: v1.ConditionFalse},
		{name: "ready with IP", pod: testPod(withContainers("a")), sandboxes: []*runtimeapi.PodSandboxStatus{sandbox("s1", 0, true, "10.0.0.2")}, want: v1.ConditionTrue},
		{name: "newest not ready", pod: testPod(withContainers("a")), sandboxes: []*runtimeapi.PodSandboxStatus{sandbox("s2", 10, false, ""), sandbox("s1", 0, true, "10.0.0.2")}, want: v1.ConditionFalse},
		{name: "newest ready, older stopped", pod: testPod(withContainers("a")), sandboxes: []*runtimeapi.PodSandboxStatus{sandbox("s1", 0, false, ""), sandbox("s2", 10, true, "10.0.0.3")}, want: v1.ConditionTrue},
		{name: "two ready", pod: testPod(withContainers("a")), sandboxes: []*runtimeapi.PodSandboxStatus{sandbox("s2", 10, true, "10.0.0.3"), sandbox("s1", 0, true, "10.0.0.2")}, want: v1.ConditionFalse},
		{name: "ready without IP", pod: testPod(withContainers("a")), sandboxes: []*runtimeapi.PodSandboxStatus{sandbox("s1", 0, true, "")}, want: v1.ConditionFalse},
		{name: "host network without IP", pod: testPod(withContainers("a"), hostNet), sandboxes: []*runtimeapi.PodSandboxStatus{nodeNS(sandbox("s1", 0, true, ""))}, want: v1.ConditionTrue},
		{name: "host network pod in a pod netns", pod: testPod(withContainers("a"), hostNet), sandboxes: []*runtimeapi.PodSandboxStatus{sandbox("s1", 0, true, "10.0.0.2")}, want: v1.ConditionFalse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &pleg.PodStatus{SandboxStatuses: tc.sandboxes}
			got := condition(Generate(tc.pod, r, v1.PodStatus{}, opts()), v1.PodReadyToStartContainers)
			if got == nil || got.Status != tc.want {
				t.Fatalf("PodReadyToStartContainers = %+v, want %s", got, tc.want)
			}
		})
	}
}

func TestGenerateConditions(t *testing.T) {
	o := opts()
	pod := testPod(withContainers("a"), withReadinessGates("example.com/gate"), func(p *v1.Pod) {
		p.Status.Conditions = []v1.PodCondition{
			{Type: "example.com/gate", Status: v1.ConditionTrue},
			{Type: v1.PodReady, Status: v1.ConditionTrue}, // kubelet-owned: regenerated
		}
	})
	r := rstatus(running("a", "a1", 1))

	s := Generate(pod, r, v1.PodStatus{}, o)
	var types []v1.PodConditionType
	for _, c := range s.Conditions {
		types = append(types, c.Type)
	}
	wantTypes := []v1.PodConditionType{"example.com/gate", v1.PodReadyToStartContainers, v1.PodInitialized, v1.PodReady, v1.ContainersReady, v1.PodScheduled}
	if len(types) != len(wantTypes) {
		t.Fatalf("condition types = %v, want %v", types, wantTypes)
	}
	for i := range types {
		if types[i] != wantTypes[i] {
			t.Fatalf("condition types = %v, want %v", types, wantTypes)
		}
	}
	for _, typ := range []v1.PodConditionType{v1.PodReadyToStartContainers, v1.PodInitialized, v1.PodReady, v1.ContainersReady, v1.PodScheduled} {
		c := condition(s, typ)
		if want := v1.ConditionTrue; c.Status != want {
			t.Errorf("%s = %s (%s: %s), want %s", typ, c.Status, c.Reason, c.Message, want)
		}
		if !c.LastTransitionTime.Time.Equal(o.Now) {
			t.Errorf("%s transition time = %v, want %v", typ, c.LastTransitionTime, o.Now)
		}
	}

	// Same status an hour later: transition times are kept.
	o2 := o
	o2.Now = o.Now.Add(time.Hour)
	s2 := Generate(pod, r, s, o2)
	if got := condition(s2, v1.PodReady).LastTransitionTime.Time; !got.Equal(o.Now) {
		t.Errorf("unchanged Ready transition time = %v, want %v", got, o.Now)
	}
	if !s2.StartTime.Time.Equal(o.Now) {
		t.Errorf("start time = %v, want kept %v", s2.StartTime, o.Now)
	}

	// The container stops being ready (a readiness probe fails): Ready flips
	// and its transition time moves; PodScheduled keeps its time.
	o3 := o2
	o3.ProbeStatus = func(_ *v1.Pod, st *v1.PodStatus) {
		for i := range st.ContainerStatuses {
			st.ContainerStatuses[i].Started, st.ContainerStatuses[i].Ready = boolp(true), false
		}
	}
	s3 := Generate(pod, r, s2, o3)
	ready := condition(s3, v1.PodReady)
	if ready.Status != v1.ConditionFalse || !ready.LastTransitionTime.Time.Equal(o2.Now) {
		t.Errorf("Ready = %s at %v, want False at %v", ready.Status, ready.LastTransitionTime, o2.Now)
	}
	if got := condition(s3, v1.PodScheduled).LastTransitionTime.Time; !got.Equal(o.Now) {
		t.Errorf("PodScheduled transition time = %v, want %v", got, o.Now)
	}
	if got := condition(s3, v1.ContainersReady); got.Reason != ReasonContainersNotReady {
		t.Errorf("ContainersReady reason = %q", got.Reason)
	}
}

func TestGenerateKeepsDisruptionTarget(t *testing.T) {
	old := v1.PodStatus{Conditions: []v1.PodCondition{{Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: "TerminationByKubelet", LastTransitionTime: metav1.NewTime(t0)}}}
	s := Generate(testPod(withContainers("a")), rstatus(), old, opts())
	c := condition(s, v1.DisruptionTarget)
	if c == nil || c.Reason != "TerminationByKubelet" {
		t.Fatalf("DisruptionTarget = %+v, want kept from the old status", c)
	}
}
