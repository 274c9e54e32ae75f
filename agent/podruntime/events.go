package podruntime

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodekit-dev/nodekit/agent/timeline"
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

// note records e in the pod's timeline. An entry with Event set is a kubelet
// Event too (type e.Event, reason e.Reason, message e.Message) about the
// container e.Container, or the pod when it names none: every event the
// manager reports is in the timeline, with the timeline's details (what,
// how long, the error) beside it.
func (m *Manager) note(pod *v1.Pod, e timeline.Entry) {
	if pod == nil {
		return
	}
	m.timeline.Record(pod.UID, e)
	if e.Event == "" || m.recorder == nil {
		return
	}
	ref := PodReference(pod)
	if e.Container != "" {
		ref.FieldPath = containerFieldPath(pod, e.Container)
	}
	m.recorder.Eventf(ref, e.Event, e.Reason, "%s", e.Message)
}

// withPod makes ctx carry the pod's timeline, for the CRI calls made with it.
func (m *Manager) withPod(ctx context.Context, uid types.UID) context.Context {
	if m.timeline == nil {
		return ctx
	}
	return timeline.WithPod(ctx, m.timeline, uid)
}
