package podruntime

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/restartpolicy"
)

// KillReason says why a container is stopped; probe reasons pick the probe's
// terminationGracePeriodSeconds when it sets one.
type KillReason string

// Kill reasons (the kubelet's).
const (
	ReasonLivenessProbe       KillReason = "LivenessProbe"
	ReasonStartupProbe        KillReason = "StartupProbe"
	ReasonFailedPostStartHook KillReason = "FailedPostStartHook"
	ReasonUnknown             KillReason = "Unknown"
	// ReasonStopping is a plain stop (pod termination, spec change).
	ReasonStopping KillReason = ""
)

// podActions is what SyncPod must do for a pod (the kubelet's podActions).
type podActions struct {
	// killPod: stop every container and the sandbox, for the reason killWhy.
	killPod bool
	killWhy string
	// createSandbox: (re)create the sandbox, for the reason sandboxWhy; with
	// killPod, what ran before is killed first and init containers are
	// purged.
	createSandbox bool
	sandboxWhy    string
	sandboxID     string
	attempt       uint32
	// initToStart and containersToStart are indexes into the pod's
	// InitContainers and Containers, in start order.
	initToStart       []int
	containersToStart []int
	// containersToKill are running containers to stop (before starting).
	containersToKill []killInfo
}

type killInfo struct {
	status  *runtimeapi.ContainerStatus
	spec    *v1.Container
	message string
	reason  KillReason
	why     string // for the timeline: "liveness probe failed", "spec changed"...
}

func (a *podActions) kill(k killInfo) {
	for _, o := range a.containersToKill {
		if o.status.GetId() == k.status.GetId() {
			return
		}
	}
	a.containersToKill = append(a.containersToKill, k)
}

func (a podActions) String() string {
	ids := make([]string, 0, len(a.containersToKill))
	for _, k := range a.containersToKill {
		ids = append(ids, containerName(k.status))
	}
	return fmt.Sprintf("killPod=%t createSandbox=%t attempt=%d init=%v start=%v kill=%v",
		a.killPod, a.createSandbox, a.attempt, a.initToStart, a.containersToStart, ids)
}

// networkMode, pidMode and ipcMode are the pod's CRI namespace modes.
func networkMode(pod *v1.Pod) runtimeapi.NamespaceMode {
	if pod.Spec.HostNetwork {
		return runtimeapi.NamespaceMode_NODE
	}
	return runtimeapi.NamespaceMode_POD
}

func pidMode(pod *v1.Pod) runtimeapi.NamespaceMode {
	if pod.Spec.HostPID {
		return runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		return runtimeapi.NamespaceMode_POD
	}
	return runtimeapi.NamespaceMode_CONTAINER
}

func ipcMode(pod *v1.Pod) runtimeapi.NamespaceMode {
	if pod.Spec.HostIPC {
		return runtimeapi.NamespaceMode_NODE
	}
	return runtimeapi.NamespaceMode_POD
}

// sandboxChanged says whether the pod needs a new sandbox: none exists, the
// newest is not ready, several are ready, its network mode changed or it lost
// its IP. It returns the attempt number for the new sandbox (or of the current
// one), the current sandbox's ID and why a new one is needed.
func sandboxChanged(pod *v1.Pod, st *podState) (bool, uint32, string, string) {
	if len(st.sandboxes) == 0 {
		return true, 0, "", "no sandbox yet"
	}
	ready := 0
	for _, s := range st.sandboxes {
		if s.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			ready++
		}
	}
	s := st.sandboxes[0]
	next := s.GetMetadata().GetAttempt() + 1
	switch {
	case ready > 1:
		return true, next, s.GetId(), fmt.Sprintf("%d sandboxes ready", ready)
	case s.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY:
		return true, next, s.GetId(), "sandbox not ready"
	case s.GetLinux().GetNamespaces().GetOptions().GetNetwork() != networkMode(pod):
		return true, next, "", "network mode changed"
	case !pod.Spec.HostNetwork && s.GetNetwork() != nil && s.GetNetwork().GetIp() == "":
		return true, next, s.GetId(), "sandbox has no IP"
	}
	return false, s.GetMetadata().GetAttempt(), s.GetId(), ""
}

// shouldRestart says whether an app container that is not running must be
// started (the kubelet's ShouldContainerBeRestarted).
func shouldRestart(c *v1.Container, pod *v1.Pod, st *podState) bool {
	if pod.DeletionTimestamp != nil {
		return false
	}
	s := st.latest(c.Name)
	switch {
	case s == nil:
		return true
	case s.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING:
		return false
	case s.GetState() == runtimeapi.ContainerState_CONTAINER_UNKNOWN,
		s.GetState() == runtimeapi.ContainerState_CONTAINER_CREATED:
		return true
	}
	return restartpolicy.ShouldRestart(c, &pod.Spec, s.GetExitCode())
}

func restartOnFailure(pod *v1.Pod) bool { return pod.Spec.RestartPolicy != v1.RestartPolicyNever }

func succeeded(c *v1.Container, st *podState) bool {
	s := st.latest(c.Name)
	return isExited(s) && s.GetExitCode() == 0
}

// anyRegularCreated says whether some app container exists (created, running or
// exited): the pod got past its init containers at some point.
func anyRegularCreated(pod *v1.Pod, st *podState) bool {
	for i := range pod.Spec.Containers {
		switch s := st.latest(pod.Spec.Containers[i].Name); {
		case s == nil:
		case s.GetState() == runtimeapi.ContainerState_CONTAINER_CREATED,
			s.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING,
			s.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED:
			return true
		}
	}
	return false
}

// computePodActions decides what SyncPod does for pod given its runtime state,
// following the kubelet's computePodActions.
func (m *Manager) computePodActions(pod *v1.Pod, st *podState) podActions {
	create, attempt, sandboxID, why := sandboxChanged(pod, st)
	a := podActions{killPod: create, createSandbox: create, sandboxID: sandboxID, attempt: attempt}
	if create {
		a.killWhy, a.sandboxWhy = why, why
	}

	if create {
		// A pod that ran and must not restart gets no new sandbox: it is done.
		if !restartOnFailure(pod) && attempt != 0 && len(st.all) != 0 {
			a.createSandbox = false
			a.killWhy = why + "; not re-created: restartPolicy " + string(pod.Spec.RestartPolicy)
			return a
		}
		var start []int
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			if restartpolicy.RunsOnce(c, &pod.Spec) && succeeded(c, st) {
				continue
			}
			start = append(start, i)
		}
		if len(start) == 0 && anyRegularCreated(pod, st) {
			a.createSandbox = false
			a.killWhy = why + "; not re-created: every container succeeded"
			return a
		}
		// A new sandbox starts from scratch: the first init container, or all
		// app containers.
		if len(pod.Spec.InitContainers) != 0 {
			a.initToStart = []int{0}
			return a
		}
		a.containersToStart = start
		return a
	}

	initialized := m.computeInitActions(pod, st, &a)
	if a.killPod || !initialized {
		return a
	}

	keep := 0
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		s := st.latest(c.Name)
		if !isRunning(s) {
			if shouldRestart(c, pod, st) {
				a.containersToStart = append(a.containersToStart, i)
				if s.GetState() == runtimeapi.ContainerState_CONTAINER_UNKNOWN {
					a.kill(killInfo{status: s, spec: c, reason: ReasonUnknown, why: "state unknown",
						message: fmt.Sprintf("Container is in %q state, try killing it before restart", s.GetState())})
				}
			}
			continue
		}
		var msg, why string
		var reason KillReason
		restart := restartpolicy.RestartsWhenKilled(c, &pod.Spec)
		switch {
		case containerChanged(c, s):
			msg, restart, why = fmt.Sprintf("Container %s definition changed", c.Name), true, "spec changed"
		case m.probe(LivenessProbe, s.GetId()) == ProbeFailure:
			msg, reason, why = fmt.Sprintf("Container %s failed liveness probe", c.Name), ReasonLivenessProbe, "liveness probe failed"
		case m.probe(StartupProbe, s.GetId()) == ProbeFailure:
			msg, reason, why = fmt.Sprintf("Container %s failed startup probe", c.Name), ReasonStartupProbe, "startup probe failed"
		default:
			keep++
			continue
		}
		if restart {
			msg += ", will be restarted"
			a.containersToStart = append(a.containersToStart, i)
		}
		a.kill(killInfo{status: s, spec: c, message: msg, reason: reason, why: why})
	}
	if keep == 0 && len(a.containersToStart) == 0 {
		// Nothing runs or will: stop the pod, sidecars included (they must not
		// keep it alive).
		a.killPod = true
		a.killWhy = "no container runs or will run"
		a.initToStart = nil
	}
	return a
}

// computeInitActions fills the init container part of a: the next init
// container to run, sidecars to (re)start or kill. It reports whether the pod is
// initialized (the kubelet's computeInitContainerActions).
func (m *Manager) computeInitActions(pod *v1.Pod, st *podState, a *podActions) bool {
	inits := pod.Spec.InitContainers
	if len(inits) == 0 {
		return true
	}
	// A created or running app container means the pod was initialized, even if
	// init containers were removed since.
	initialized := false
	for i := range pod.Spec.Containers {
		s := st.latest(pod.Spec.Containers[i].Name)
		if s != nil && (s.GetState() == runtimeapi.ContainerState_CONTAINER_CREATED ||
			s.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING) {
			initialized = true
		}
	}
	previouslyInitialized := initialized
	var start []int // collected backwards

	// Walk backwards: the newest evidence of progress is the last init container
	// that ran (earlier ones may have been removed).
	for i := len(inits) - 1; i >= 0; i-- {
		c := &inits[i]
		s := st.latest(c.Name)
		sidecar := isRestartableInit(c)
		if s == nil {
			if previouslyInitialized && sidecar {
				start = append(start, i)
			}
			continue
		}
		if previouslyInitialized && !sidecar {
			continue // done long ago
		}
		switch s.GetState() {
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			// Created but never started: start it again.
			start = append(start, i)

		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			if !sidecar {
				break // wait for it to finish
			}
			if c.StartupProbe != nil {
				if r := m.probe(StartupProbe, s.GetId()); r != ProbeSuccess {
					if r == ProbeFailure {
						a.kill(killInfo{status: s, spec: c, reason: ReasonStartupProbe, why: "startup probe failed",
							message: fmt.Sprintf("Init container %s failed startup probe", c.Name)})
						start = append(start, i)
					}
					break // not started yet
				}
			}
			// The sidecar is started: the next init container may run.
			if i == len(inits)-1 {
				initialized = true
			} else if !previouslyInitialized {
				start = append(start, i+1)
			}
			if containerChanged(c, s) {
				a.kill(killInfo{status: s, spec: c, why: "spec changed",
					message: fmt.Sprintf("Init container %s definition changed", c.Name)})
				start = append(start, i)
				break
			}
			if c.LivenessProbe != nil && m.probe(LivenessProbe, s.GetId()) == ProbeFailure {
				a.kill(killInfo{status: s, spec: c, reason: ReasonLivenessProbe, why: "liveness probe failed",
					message: fmt.Sprintf("Init container %s failed liveness probe", c.Name)})
				start = append(start, i)
			}

		case runtimeapi.ContainerState_CONTAINER_EXITED:
			if sidecar {
				start = append(start, i)
				break
			}
			if initFailed(s) {
				if !restartpolicy.ShouldRestart(c, &pod.Spec, s.GetExitCode()) {
					a.killPod = true
					a.killWhy = fmt.Sprintf("init container %s failed (%s), restartPolicy %s", c.Name, exitText(s), restartPolicyOf(c, pod))
					a.initToStart = nil
					return false
				}
				start = append(start, i)
				break
			}
			if i == len(inits)-1 {
				initialized = true
			} else {
				start = append(start, i+1)
			}

		default: // unknown
			if !sidecar && !restartpolicy.RestartsWhenKilled(c, &pod.Spec) {
				a.killPod = true
				a.killWhy = fmt.Sprintf("init container %s in state unknown, restartPolicy %s", c.Name, restartPolicyOf(c, pod))
				a.initToStart = nil
				return false
			}
			a.kill(killInfo{status: s, spec: c, reason: ReasonUnknown, why: "state unknown",
				message: fmt.Sprintf("Init container is in %q state, try killing it before restart", s.GetState())})
			start = append(start, i)
		}
		previouslyInitialized = true
	}
	if !previouslyInitialized {
		start = append(start, 0) // nothing ran yet
	}
	for i := len(start) - 1; i >= 0; i-- {
		a.initToStart = append(a.initToStart, start[i])
	}
	return initialized
}
