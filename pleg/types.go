package pleg

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodStatus is the runtime's view of one pod: its sandboxes and containers as the
// CRI reports them. Pods are told apart by the kubelet's labels on CRI objects
// (io.kubernetes.pod.uid, .name, .namespace).
type PodStatus struct {
	ID        types.UID
	Name      string
	Namespace string
	// IPs of the pod's ready sandbox, primary first.
	IPs []string
	// SandboxStatuses holds every sandbox of the pod, newest first.
	SandboxStatuses []*runtimeapi.PodSandboxStatus
	// ContainerStatuses holds every container of the pod (running and exited),
	// newest first.
	ContainerStatuses []*runtimeapi.ContainerStatus
	// TimeStamp is when this status was read from the runtime.
	TimeStamp time.Time
}

// EventType says what happened to a pod's container.
type EventType string

// The events a PLEG emits.
const (
	ContainerStarted EventType = "ContainerStarted"
	ContainerDied    EventType = "ContainerDied"
	ContainerRemoved EventType = "ContainerRemoved"
	ContainerChanged EventType = "ContainerChanged"
	// PodSync asks for a sync of the pod without a specific container event
	// (e.g. its sandbox changed).
	PodSync EventType = "PodSync"
)

// Event is a pod lifecycle event.
type Event struct {
	ID   types.UID // the pod
	Type EventType
	Data string // the container id, when the event is about a container
}

// PLEG generates pod lifecycle events.
type PLEG interface {
	// Start begins watching the runtime; Stop ends it.
	Start()
	Stop()
	// Watch returns the channel events arrive on. There is one channel per PLEG.
	Watch() <-chan *Event
	// Healthy reports whether the PLEG is keeping up (a successful relist within
	// its threshold), with an error saying why not.
	Healthy() (bool, error)
}
