package status

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func vRunning(name string) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}
}

func vStarted(name string, started bool) v1.ContainerStatus {
	s := vRunning(name)
	s.Started = boolp(started)
	return s
}

func vExited(name string, code int32) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}}
}

func vWaiting(name string) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
}

// vBackOff is a container waiting to be restarted after exiting with code.
func vBackOff(name string, code int32) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name,
		State:                v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}},
	}
}

func vUnknownState(name string) v1.ContainerStatus { return v1.ContainerStatus{Name: name} }

func cs(s ...v1.ContainerStatus) []v1.ContainerStatus { return s }

// TestPhase ports the cases of the kubelet's getPhase tests
// (TestPodPhaseWithRestart{Always,Never,OnFailure}{,InitContainers,RestartableInitContainers}).
func TestPhase(t *testing.T) {
	const (
		always    = v1.RestartPolicyAlways
		never     = v1.RestartPolicyNever
		onFailure = v1.RestartPolicyOnFailure
	)
	apiPod := func(p *v1.Pod) { p.Annotations[configSourceAnnotation] = apiserverSource }
	tests := []struct {
		name        string
		restart     v1.RestartPolicy
		init        []string
		sidecars    []string
		static      bool // default: an API pod, so podIsTerminal applies
		statuses    []v1.ContainerStatus
		terminal    bool
		initialized bool
		want        v1.PodPhase
	}{
		// restartPolicy Always
		{name: "always/all running", restart: always, statuses: cs(vRunning("a"), vRunning("b")), want: v1.PodRunning},
		{name: "always/all stopped restart", restart: always, statuses: cs(vExited("a", 0), vExited("b", 1)), want: v1.PodRunning},
		{name: "always/mixed running and stopped", restart: always, statuses: cs(vRunning("a"), vExited("b", 1)), want: v1.PodRunning},
		{name: "always/one missing", restart: always, statuses: cs(vRunning("a")), want: v1.PodPending},
		{name: "always/one waiting", restart: always, statuses: cs(vRunning("a"), vWaiting("b")), want: v1.PodPending},
		{name: "always/crash loop counts as stopped", restart: always, statuses: cs(vRunning("a"), vBackOff("b", 1)), want: v1.PodRunning},
		{name: "always/all crash looping", restart: always, statuses: cs(vBackOff("a", 1), vBackOff("b", 2)), want: v1.PodRunning},
		{name: "always/unknown state", restart: always, statuses: cs(vRunning("a"), vUnknownState("b")), want: v1.PodPending},
		{name: "always/terminal, all succeeded", restart: always, statuses: cs(vExited("a", 0), vExited("b", 0)), terminal: true, want: v1.PodSucceeded},
		{name: "always/terminal, one failed", restart: always, statuses: cs(vExited("a", 0), vExited("b", 1)), terminal: true, want: v1.PodFailed},
		{name: "always/terminal static pod keeps restarting", restart: always, static: true, statuses: cs(vExited("a", 0), vExited("b", 1)), terminal: true, want: v1.PodRunning},
		{name: "always/no statuses", restart: always, want: v1.PodPending},

		// restartPolicy Never
		{name: "never/all running", restart: never, statuses: cs(vRunning("a"), vRunning("b")), want: v1.PodRunning},
		{name: "never/all succeeded", restart: never, statuses: cs(vExited("a", 0), vExited("b", 0)), want: v1.PodSucceeded},
		{name: "never/all failed", restart: never, statuses: cs(vExited("a", 1), vExited("b", 2)), want: v1.PodFailed},
		{name: "never/one failed one succeeded", restart: never, statuses: cs(vExited("a", 0), vExited("b", 2)), want: v1.PodFailed},
		{name: "never/running and succeeded", restart: never, statuses: cs(vRunning("a"), vExited("b", 0)), want: v1.PodRunning},
		{name: "never/waiting and succeeded", restart: never, statuses: cs(vWaiting("a"), vExited("b", 0)), want: v1.PodPending},
		{name: "never/static stays succeeded", restart: never, static: true, statuses: cs(vExited("a", 0), vExited("b", 0)), want: v1.PodSucceeded},

		// restartPolicy OnFailure
		{name: "onfailure/all running", restart: onFailure, statuses: cs(vRunning("a"), vRunning("b")), want: v1.PodRunning},
		{name: "onfailure/all succeeded", restart: onFailure, statuses: cs(vExited("a", 0), vExited("b", 0)), want: v1.PodSucceeded},
		{name: "onfailure/all failed restart", restart: onFailure, statuses: cs(vExited("a", 1), vExited("b", 2)), want: v1.PodRunning},
		{name: "onfailure/running and succeeded", restart: onFailure, statuses: cs(vRunning("a"), vExited("b", 0)), want: v1.PodRunning},
		{name: "onfailure/waiting and succeeded", restart: onFailure, statuses: cs(vWaiting("a"), vExited("b", 0)), want: v1.PodPending},
		{name: "onfailure/crash loop and succeeded", restart: onFailure, statuses: cs(vBackOff("a", 1), vExited("b", 0)), want: v1.PodRunning},
		{name: "onfailure/terminal, one failed", restart: onFailure, statuses: cs(vExited("a", 1), vExited("b", 0)), terminal: true, want: v1.PodFailed},

		// init containers
		{name: "always/init running", restart: always, init: []string{"i"}, statuses: cs(vRunning("i"), vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "always/init missing", restart: always, init: []string{"i"}, statuses: cs(vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "always/init waiting", restart: always, init: []string{"i"}, statuses: cs(vWaiting("i"), vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "always/init failed, back-off", restart: always, init: []string{"i"}, statuses: cs(vBackOff("i", 1), vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "always/init failed, terminated", restart: always, init: []string{"i"}, statuses: cs(vExited("i", 1), vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "always/init succeeded, apps running", restart: always, init: []string{"i"}, statuses: cs(vExited("i", 0), vRunning("a"), vRunning("b")), want: v1.PodRunning},
		{name: "always/init succeeded, back-off after success is done", restart: always, init: []string{"i"}, statuses: cs(vBackOff("i", 0), vRunning("a"), vRunning("b")), want: v1.PodRunning},
		{name: "always/second init pending", restart: always, init: []string{"i", "j"}, statuses: cs(vExited("i", 0), vWaiting("j"), vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "never/init failed", restart: never, init: []string{"i"}, statuses: cs(vExited("i", 1), vWaiting("a"), vWaiting("b")), want: v1.PodFailed},
		{name: "never/init failed before", restart: never, init: []string{"i"}, statuses: cs(vBackOff("i", 1), vWaiting("a"), vWaiting("b")), want: v1.PodFailed},
		{name: "never/init running", restart: never, init: []string{"i"}, statuses: cs(vRunning("i"), vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "never/init succeeded, apps succeeded", restart: never, init: []string{"i"}, statuses: cs(vExited("i", 0), vExited("a", 0), vExited("b", 0)), want: v1.PodSucceeded},
		{name: "onfailure/init failed", restart: onFailure, init: []string{"i"}, statuses: cs(vExited("i", 1), vWaiting("a"), vWaiting("b")), want: v1.PodPending},

		// restartable init containers (sidecars)
		{name: "sidecar waiting", restart: always, sidecars: []string{"s"}, statuses: cs(vWaiting("s"), vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "sidecar missing", restart: always, sidecars: []string{"s"}, statuses: cs(vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "sidecar running not started", restart: always, sidecars: []string{"s"}, statuses: cs(vStarted("s", false), vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "sidecar running, started unknown", restart: always, sidecars: []string{"s"}, statuses: cs(vRunning("s"), vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "sidecar started, apps waiting", restart: always, sidecars: []string{"s"}, statuses: cs(vStarted("s", true), vWaiting("a"), vWaiting("b")), want: v1.PodPending},
		{name: "sidecar started, apps running", restart: always, sidecars: []string{"s"}, statuses: cs(vStarted("s", true), vRunning("a"), vRunning("b")), want: v1.PodRunning},
		{name: "sidecar restarting after init, apps running", restart: always, sidecars: []string{"s"}, statuses: cs(vBackOff("s", 1), vRunning("a"), vRunning("b")), want: v1.PodRunning},
		{name: "sidecar not started again but pod initialized", restart: always, sidecars: []string{"s"}, initialized: true, statuses: cs(vStarted("s", false), vRunning("a"), vRunning("b")), want: v1.PodRunning},
		{name: "sidecar not started, not initialized", restart: always, sidecars: []string{"s"}, statuses: cs(vStarted("s", false), vRunning("a"), vRunning("b")), want: v1.PodPending},
		{name: "sidecar stopped, apps running", restart: always, sidecars: []string{"s"}, statuses: cs(vExited("s", 1), vRunning("a"), vRunning("b")), want: v1.PodRunning},
		{name: "never/sidecar running, apps succeeded", restart: never, sidecars: []string{"s"}, statuses: cs(vStarted("s", true), vExited("a", 0), vExited("b", 0)), want: v1.PodRunning},
		{name: "never/sidecar stopped, apps succeeded", restart: never, sidecars: []string{"s"}, statuses: cs(vExited("s", 137), vExited("a", 0), vExited("b", 0)), want: v1.PodSucceeded},
		{name: "never/sidecar stopped, one app failed", restart: never, sidecars: []string{"s"}, statuses: cs(vExited("s", 0), vExited("a", 0), vExited("b", 1)), want: v1.PodFailed},
		{name: "never/sidecar crash looping, apps succeeded", restart: never, sidecars: []string{"s"}, statuses: cs(vBackOff("s", 1), vExited("a", 0), vExited("b", 0)), want: v1.PodSucceeded},
		{name: "onfailure/sidecar running, one app failed", restart: onFailure, sidecars: []string{"s"}, statuses: cs(vStarted("s", true), vExited("a", 0), vExited("b", 1)), want: v1.PodRunning},
		{name: "never/sidecar then init failed", restart: never, sidecars: []string{"s"}, init: []string{"i"}, statuses: cs(vStarted("s", true), vExited("i", 1), vWaiting("a"), vWaiting("b")), want: v1.PodFailed},
		{name: "always/sidecar then init running", restart: always, sidecars: []string{"s"}, init: []string{"i"}, statuses: cs(vStarted("s", true), vRunning("i"), vWaiting("a"), vWaiting("b")), want: v1.PodPending},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod(withRestart(tc.restart), withSidecars(tc.sidecars...), withInit(tc.init...), withContainers("a", "b"))
			if !tc.static {
				apiPod(p)
			}
			if got := phase(p, tc.statuses, tc.terminal, tc.initialized); got != tc.want {
				t.Errorf("phase = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestGeneratePhase runs the phase rules end to end, from CRI container
// statuses through Generate.
func TestGeneratePhase(t *testing.T) {
	const (
		RUNNING = runtimeapi.ContainerState_CONTAINER_RUNNING
		CREATED = runtimeapi.ContainerState_CONTAINER_CREATED
	)
	tests := []struct {
		name     string
		pod      *v1.Pod
		runtime  []*runtimeapi.ContainerStatus
		waiting  map[string]string
		old      v1.PodStatus
		terminal bool
		want     v1.PodPhase
	}{
		{name: "nothing created yet", pod: testPod(withContainers("a")), want: v1.PodPending},
		{name: "created, not started", pod: testPod(withContainers("a")), runtime: rs(ctr("a", "a1", 1, CREATED)), want: v1.PodPending},
		{name: "running", pod: testPod(withContainers("a")), runtime: rs(running("a", "a1", 1)), want: v1.PodRunning},
		{name: "always: exited, restarting", pod: testPod(withContainers("a")), runtime: rs(exited("a", "a1", 1, 0)), want: v1.PodRunning},
		{name: "always: crash loop", pod: testPod(withContainers("a")), runtime: rs(exited("a", "a1", 1, 1)), waiting: map[string]string{"a": "CrashLoopBackOff"}, want: v1.PodRunning},
		{name: "always: image pull failing, never ran", pod: testPod(withContainers("a")), waiting: map[string]string{"a": "ErrImagePull"}, want: v1.PodPending},
		{name: "never: succeeded", pod: testPod(withRestart(v1.RestartPolicyNever), withContainers("a", "b")), runtime: rs(exited("a", "a1", 1, 0), exited("b", "b1", 1, 0)), want: v1.PodSucceeded},
		{name: "never: failed", pod: testPod(withRestart(v1.RestartPolicyNever), withContainers("a", "b")), runtime: rs(exited("a", "a1", 1, 0), exited("b", "b1", 1, 3)), want: v1.PodFailed},
		{name: "onfailure: failed one restarting", pod: testPod(withRestart(v1.RestartPolicyOnFailure), withContainers("a", "b")), runtime: rs(exited("a", "a1", 1, 0), exited("b", "b1", 1, 3)), waiting: map[string]string{"b": "CrashLoopBackOff"}, want: v1.PodRunning},
		{name: "onfailure: succeeded, no waiting reason for the done one", pod: testPod(withRestart(v1.RestartPolicyOnFailure), withContainers("a")), runtime: rs(exited("a", "a1", 1, 0)), waiting: map[string]string{"a": "CrashLoopBackOff"}, want: v1.PodSucceeded},
		{name: "init running", pod: testPod(withInit("i"), withContainers("a")), runtime: rs(running("i", "i1", 1)), want: v1.PodPending},
		{name: "init done, app running", pod: testPod(withInit("i"), withContainers("a")), runtime: rs(exited("i", "i1", 1, 0), running("a", "a1", 10)), want: v1.PodRunning},
		{name: "never: init failed", pod: testPod(withRestart(v1.RestartPolicyNever), withInit("i"), withContainers("a")), runtime: rs(exited("i", "i1", 1, 2)), want: v1.PodFailed},
		{name: "always: init failed, back-off", pod: testPod(withInit("i"), withContainers("a")), runtime: rs(exited("i", "i1", 1, 2)), waiting: map[string]string{"i": "CrashLoopBackOff"}, want: v1.PodPending},
		{name: "init removed after apps ran", pod: testPod(withInit("i"), withContainers("a")), runtime: rs(running("a", "a1", 10)), want: v1.PodRunning},
		{name: "sidecar running, started unknown", pod: testPod(withSidecars("s"), withContainers("a")), runtime: rs(running("s", "s1", 1)), want: v1.PodPending},
		{name: "sidecar started before, app running", pod: testPod(withSidecars("s"), withContainers("a")), runtime: rs(running("s", "s1", 1), running("a", "a1", 10)),
			old: v1.PodStatus{InitContainerStatuses: cs(vStarted("s", true))}, want: v1.PodRunning},
		{name: "sidecar restarting, app of this sandbox exists", pod: testPod(withSidecars("s"), withContainers("a")), runtime: rs(running("s", "s2", 20), exited("s", "s1", 1, 1), running("a", "a1", 10)),
			old: v1.PodStatus{InitContainerStatuses: cs(vStarted("s", false))}, want: v1.PodRunning},
		{name: "static pod terminal stays running", pod: testPod(withContainers("a")), runtime: rs(exited("a", "a1", 1, 1)), terminal: true, want: v1.PodRunning},
		{name: "terminal phase in old is kept", pod: testPod(withContainers("a")), runtime: rs(running("a", "a2", 10)), old: v1.PodStatus{Phase: v1.PodSucceeded}, want: v1.PodSucceeded},
		{name: "terminal phase in the API pod is kept", pod: testPod(withContainers("a"), func(p *v1.Pod) { p.Status.Phase = v1.PodFailed }), runtime: rs(running("a", "a2", 10)), want: v1.PodFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			o.WaitingReason = reasons(tc.waiting)
			o.PodIsTerminal = tc.terminal
			got := Generate(tc.pod, rstatus(tc.runtime...), tc.old, o)
			if got.Phase != tc.want {
				t.Errorf("phase = %s, want %s\nstatus: %+v", got.Phase, tc.want, got)
			}
		})
	}
}

func rs(c ...*runtimeapi.ContainerStatus) []*runtimeapi.ContainerStatus { return c }

// TestGenerateCarriesSidecarStarted: a running container keeps Started from the
// old status (set by the startup probe) when the phase is computed, as upstream.
func TestGenerateCarriesSidecarStarted(t *testing.T) {
	pod := testPod(withSidecars("s"), withContainers("a"))
	// The sandbox was recreated at 50 s: the app container (created at 10 s)
	// belongs to the old one, so the pod does not count as initialized.
	r := rstatus(running("s", "s2", 60), exited("a", "a1", 10, 1))
	r.SandboxStatuses = append([]*runtimeapi.PodSandboxStatus{sandbox("sb2", 50, true, "10.88.0.5")}, sandbox("sb1", 0, false, ""))
	o := opts()
	o.ProbeStatus = func(*v1.Pod, *v1.PodStatus) {} // a probe manager with no results
	for _, tc := range []struct {
		started *bool
		want    v1.PodPhase
	}{{boolp(true), v1.PodRunning}, {boolp(false), v1.PodPending}, {nil, v1.PodPending}} {
		old := v1.PodStatus{InitContainerStatuses: cs(vRunning("s"))}
		old.InitContainerStatuses[0].Started = tc.started
		s := Generate(pod, r, old, o)
		if s.Phase != tc.want {
			t.Errorf("old started %v: phase %s, want %s", tc.started, s.Phase, tc.want)
		}
		if got := s.InitContainerStatuses[0].Started; (got == nil) != (tc.started == nil) || got != nil && *got != *tc.started {
			t.Errorf("old started %v: started %v", tc.started, got)
		}
	}
}

// TestPhaseWithContainerRestartPolicy ports upstream's
// TestPodPhaseWithContainerRestartPolicy{,InitContainers} (ContainerRestartRules
// on, as by default since 1.35) and adds restart rules.
func TestPhaseWithContainerRestartPolicy(t *testing.T) {
	never, onFailure, always := v1.ContainerRestartPolicyNever, v1.ContainerRestartPolicyOnFailure, v1.ContainerRestartPolicyAlways
	ctr := func(name string, p *v1.ContainerRestartPolicy) v1.Container {
		return v1.Container{Name: name, RestartPolicy: p}
	}
	retry42 := ctr("retry42", &never)
	retry42.RestartPolicyRules = []v1.ContainerRestartRule{{Action: v1.ContainerRestartRuleActionRestart,
		ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{42}}}}
	for _, tc := range []struct {
		name       string
		restart    v1.RestartPolicy
		init, apps []v1.Container
		statuses   []v1.ContainerStatus
		want       v1.PodPhase
	}{
		// TestPodPhaseWithContainerRestartPolicy
		{"container with restart policy Never failed", v1.RestartPolicyAlways, nil,
			[]v1.Container{ctr("failed-container", &never)}, cs(vExited("failed-container", 1)), v1.PodFailed},
		{"container with restart policy OnFailure failed", v1.RestartPolicyAlways, nil,
			[]v1.Container{ctr("failed-container", &onFailure)}, cs(vExited("failed-container", 1)), v1.PodRunning},
		{"container with restart policy Always failed", v1.RestartPolicyAlways, nil,
			[]v1.Container{ctr("failed-container", &always)}, cs(vExited("failed-container", 1)), v1.PodRunning},
		{"At least one container with restartable container-level restart policy failed", v1.RestartPolicyNever, nil,
			[]v1.Container{ctr("containerA", &always), ctr("containerB", nil)}, cs(vExited("containerA", 0), vExited("containerB", 1)), v1.PodRunning},
		{"All containers without restartable container-level restart policy failed", v1.RestartPolicyAlways, nil,
			[]v1.Container{ctr("containerA", &never), ctr("containerB", &onFailure)}, cs(vExited("containerA", 1), vExited("containerB", 0)), v1.PodFailed},
		{"All containers succeeded", v1.RestartPolicyAlways, nil,
			[]v1.Container{ctr("containerA", &never), ctr("containerB", &onFailure)}, cs(vExited("containerA", 0), vExited("containerB", 0)), v1.PodSucceeded},
		// TestPodPhaseWithContainerRestartPolicyInitContainers
		{"init container with restart policy Never failed", v1.RestartPolicyAlways, []v1.Container{ctr("failed-container", &never)},
			[]v1.Container{ctr("container", nil)}, cs(vExited("failed-container", 1)), v1.PodFailed},
		{"init container with restart policy OnFailure failed", v1.RestartPolicyNever, []v1.Container{ctr("failed-container", &onFailure)},
			[]v1.Container{ctr("container", nil)}, cs(vExited("failed-container", 1)), v1.PodPending},
		{"init container with restart policy Always failed", v1.RestartPolicyNever, []v1.Container{ctr("failed-container", &always)},
			[]v1.Container{ctr("container", nil)}, cs(vExited("failed-container", 1)), v1.PodPending},
		// Restart rules.
		{"rule restarts exit 42 in a Never pod", v1.RestartPolicyNever, nil,
			[]v1.Container{retry42}, cs(vBackOff("retry42", 42)), v1.PodRunning},
		{"rule does not match exit 1", v1.RestartPolicyNever, nil,
			[]v1.Container{retry42}, cs(vExited("retry42", 1)), v1.PodFailed},
		{"init container retried by its rule", v1.RestartPolicyNever, []v1.Container{func() v1.Container { c := retry42; c.Name = "init"; return c }()},
			[]v1.Container{ctr("app", nil)}, cs(vBackOff("init", 42)), v1.PodPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &v1.Pod{Spec: v1.PodSpec{RestartPolicy: tc.restart, InitContainers: tc.init, Containers: tc.apps}}
			p.Annotations = map[string]string{configSourceAnnotation: apiserverSource}
			if got := phase(p, tc.statuses, false, true); got != tc.want {
				t.Errorf("phase = %s, want %s", got, tc.want)
			}
		})
	}
}
