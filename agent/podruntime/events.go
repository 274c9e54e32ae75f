package podruntime

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// EventRecorder receives the events the kubelet reports about pods and their
// containers (Pulling, Pulled, Created, Started, Killing, BackOff, Failed,
// FailedMount, …). client-go's record.EventRecorder satisfies it; object is a
// *v1.ObjectReference to the pod, with the container's field path
// (spec.containers{name}) when the event is about a container.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// The kubelet's event reasons the manager reports (pkg/kubelet/events).
const (
	EventCreated           = "Created"
	EventStarted           = "Started"
	EventFailed            = "Failed"
	EventKilling           = "Killing"
	EventBackOff           = "BackOff"
	EventPulling           = "Pulling"
	EventPulled            = "Pulled"
	EventInspectFailed     = "InspectFailed"
	EventErrImageNeverPull = "ErrImageNeverPull"
	EventFailedPostStart   = "FailedPostStartHook"
	EventFailedPreStop     = "FailedPreStopHook"
	EventSandboxChanged    = "SandboxChanged"
	EventFailedSandbox     = "FailedCreatePodSandBox"
	EventFailedMount       = "FailedMount"
)

// PodReference is the event object of a pod: what client-go's reference
// package makes of it, without a scheme.
func PodReference(pod *v1.Pod) *v1.ObjectReference {
	return &v1.ObjectReference{
		Kind:            "Pod",
		APIVersion:      "v1",
		Namespace:       pod.Namespace,
		Name:            pod.Name,
		UID:             pod.UID,
		ResourceVersion: pod.ResourceVersion,
	}
}

// ContainerReference is PodReference with the container's field path, as the
// kubelet's container events carry it.
func ContainerReference(pod *v1.Pod, name string) *v1.ObjectReference {
	ref := PodReference(pod)
	ref.FieldPath = containerFieldPath(pod, name)
	return ref
}

func containerFieldPath(pod *v1.Pod, name string) string {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return fmt.Sprintf("spec.containers{%s}", name)
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return fmt.Sprintf("spec.initContainers{%s}", name)
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return fmt.Sprintf("spec.ephemeralContainers{%s}", name)
		}
	}
	return ""
}

// podEvent reports an event about the pod.
func (m *Manager) podEvent(pod *v1.Pod, eventtype, reason, format string, args ...any) {
	if m.recorder != nil && pod != nil {
		m.recorder.Eventf(PodReference(pod), eventtype, reason, format, args...)
	}
}

// containerEvent reports an event about one of the pod's containers.
func (m *Manager) containerEvent(pod *v1.Pod, container, eventtype, reason, format string, args ...any) {
	if m.recorder != nil && pod != nil {
		m.recorder.Eventf(ContainerReference(pod, container), eventtype, reason, format, args...)
	}
}
