package podruntime

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/agent/timeline"
)

// What the manager records in a pod's timeline (Options.Timeline), besides
// its events: the decisions of each sync, with their reasons. Starts are
// recorded when they happen (past the crash-loop back-off): a container
// waiting out its back-off shows the BackOff entry of each sync instead.

// recordDecisions records what a sync decided to kill and create, and why.
func (m *Manager) recordDecisions(pod *v1.Pod, st *podState, a *podActions) {
	if m.timeline == nil {
		return
	}
	if a.killPod && anyRunning(st) {
		m.note(pod, timeline.Entry{Kind: timeline.Sync, What: "kill pod", Reason: a.killWhy})
	}
	if a.createSandbox {
		m.note(pod, timeline.Entry{Kind: timeline.Sync, What: "create sandbox", Reason: a.sandboxWhy,
			Message: fmt.Sprintf("attempt %d", a.attempt)})
	}
	if a.killPod {
		return
	}
	for _, k := range a.containersToKill {
		m.note(pod, timeline.Entry{Kind: timeline.Sync, Container: k.spec.Name, What: "kill container", Reason: k.why, Message: k.message})
	}
}

// anyRunning says whether something of the pod still runs: a container
// running or in an unknown state, or a ready sandbox.
func anyRunning(st *podState) bool {
	for _, c := range st.all {
		if c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING || c.GetState() == runtimeapi.ContainerState_CONTAINER_UNKNOWN {
			return true
		}
	}
	for _, s := range st.sandboxes {
		if s.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			return true
		}
	}
	return false
}

// recordStart records the decision to start container c: "start container",
// "restart container" or their init twins, with the reason.
func (m *Manager) recordStart(e *startEnv, c *v1.Container) {
	if m.timeline == nil {
		return
	}
	what, why := startReason(e, c)
	m.note(e.pod, timeline.Entry{Kind: timeline.Sync, Container: c.Name, What: what, Reason: why})
}

// startReason says what starting c is (a first start or a restart) and why
// the sync does it.
func startReason(e *startEnv, c *v1.Container) (what, why string) {
	s := e.st.latest(c.Name)
	what = "start container"
	if s != nil {
		what = "restart container"
	}
	if isInit(e.pod, c.Name) {
		what = strings.Replace(what, "container", "init container", 1)
	}
	switch {
	case e.newSandbox && e.attempt == 0:
		why = "first start"
	case e.newSandbox:
		why = fmt.Sprintf("new sandbox (attempt %d)", e.attempt)
	case s == nil:
		why = "not created yet"
	case s.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING:
		why = "killed: " + e.killed[c.Name] + ", restartPolicy " + restartPolicyOf(c, e.pod)
	case s.GetState() == runtimeapi.ContainerState_CONTAINER_CREATED:
		why = "created but not started"
	case s.GetState() == runtimeapi.ContainerState_CONTAINER_UNKNOWN:
		why = "state unknown"
	default:
		why = "exited (" + exitText(s) + "), restartPolicy " + restartPolicyOf(c, e.pod)
	}
	return what, why
}

func isInit(pod *v1.Pod, name string) bool {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return true
		}
	}
	return false
}

// exitText is "exit code 1", with the runtime's reason when it is not the
// usual one ("exit code 137, OOMKilled").
func exitText(s *runtimeapi.ContainerStatus) string {
	t := fmt.Sprintf("exit code %d", s.GetExitCode())
	if r := s.GetReason(); r != "" && r != "Completed" && r != "Error" {
		t += ", " + r
	}
	return t
}

// restartPolicyOf is the restart policy that applies to c: its own, else the
// pod's.
func restartPolicyOf(c *v1.Container, pod *v1.Pod) string {
	p := string(pod.Spec.RestartPolicy)
	if c.RestartPolicy != nil {
		p = string(*c.RestartPolicy)
	}
	if p == "" {
		p = string(v1.RestartPolicyAlways)
	}
	if len(c.RestartPolicyRules) > 0 {
		p += " with restart rules"
	}
	return p
}
