package status

import (
	v1 "k8s.io/api/core/v1"

	"github.com/nodekit-dev/nodekit/internal/restartpolicy"
)

// Annotation and value the kubelet uses to tell where a pod came from; pods from
// anywhere but the API server are static pods.
const (
	configSourceAnnotation = "kubernetes.io/config.source"
	apiserverSource        = "api"
)

// isStaticPod reports whether the pod came from a file or URL source, not the API
// server (kubelet types.IsStaticPod).
func isStaticPod(pod *v1.Pod) bool {
	src, ok := pod.Annotations[configSourceAnnotation]
	return ok && src != apiserverSource
}

// phase computes the pod phase from its container statuses (init and app) as the
// kubelet's getPhase does. podIsTerminal says the pod worker is done with the pod
// (ignored for static pods, as upstream); initialized says an app container of
// the current sandbox exists, so restarting sidecars do not send the pod back to
// Pending.
//
// A container's own restartPolicy and restartPolicyRules (ContainerRestartRules,
// on by default since Kubernetes 1.35) decide whether an exited container is
// restarting, as upstream: a pod is Failed when an init container failed for good,
// Running while any exited container will restart.
func phase(pod *v1.Pod, statuses []v1.ContainerStatus, podIsTerminal, initialized bool) v1.PodPhase {
	spec := &pod.Spec
	pendingInit, pendingSidecars, failedInitForGood := 0, 0, 0

	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if isSidecar(c) {
			continue
		}
		s, ok := findStatus(statuses, c.Name)
		if !ok {
			pendingInit++
			continue
		}
		switch {
		case s.State.Running != nil:
			pendingInit++
		case s.State.Terminated != nil:
			if code := s.State.Terminated.ExitCode; code != 0 && !restartpolicy.ShouldRestart(c, spec, code) {
				failedInitForGood++
			}
		case s.State.Waiting != nil:
			if t := s.LastTerminationState.Terminated; t != nil {
				if t.ExitCode != 0 && !restartpolicy.ShouldRestart(c, spec, t.ExitCode) {
					failedInitForGood++
				}
			} else {
				pendingInit++
			}
		default:
			pendingInit++
		}
	}

	unknown, running, waiting, stopped, stoppedForGood, succeeded := 0, 0, 0, 0, 0, 0

	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if !isSidecar(c) {
			continue
		}
		s, ok := findStatus(statuses, c.Name)
		if !ok {
			unknown++
			continue
		}
		switch {
		case s.State.Running != nil:
			if s.Started == nil || !*s.Started {
				pendingSidecars++
			}
			running++
		case s.State.Terminated != nil:
			// A stopped sidecar does not count for the phase.
		case s.State.Waiting != nil:
			if s.LastTerminationState.Terminated == nil {
				pendingSidecars++
				waiting++
			}
		default:
			pendingSidecars++
			unknown++
		}
	}

	for i := range spec.Containers {
		c := &spec.Containers[i]
		s, ok := findStatus(statuses, c.Name)
		if !ok {
			unknown++
			continue
		}
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			code := s.State.Terminated.ExitCode
			if !restartpolicy.ShouldRestart(c, spec, code) {
				stoppedForGood++
			}
			if code == 0 {
				succeeded++
			}
		case s.State.Waiting != nil:
			if t := s.LastTerminationState.Terminated; t != nil {
				stopped++
				if !restartpolicy.ShouldRestart(c, spec, t.ExitCode) {
					stoppedForGood++
				}
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}

	if failedInitForGood > 0 {
		return v1.PodFailed
	}

	switch {
	case pendingInit > 0 || (pendingSidecars > 0 && !initialized):
		return v1.PodPending
	case waiting > 0:
		return v1.PodPending
	case running > 0 && unknown == 0:
		return v1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if podIsTerminal && !isStaticPod(pod) {
			if stopped == succeeded {
				return v1.PodSucceeded
			}
			return v1.PodFailed
		}
		if stopped != stoppedForGood {
			return v1.PodRunning // some are restarting
		}
		if stopped == succeeded {
			return v1.PodSucceeded
		}
		return v1.PodFailed
	default:
		return v1.PodPending
	}
}
