package timeline

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Kind says which part of the agent an entry comes from.
type Kind string

// The kinds of entries.
const (
	Source  Kind = "Source"  // the pod was added, updated, deleted or removed by its source
	PLEG    Kind = "PLEG"    // a pod lifecycle event: a container started, died, was removed
	Sync    Kind = "Sync"    // what a sync decided and did: create sandbox, start, kill, restart
	BackOff Kind = "BackOff" // a start or pull held back by its back-off
	Image   Kind = "Image"   // image pulls and checks
	Hook    Kind = "Hook"    // postStart and preStop hooks
	Probe   Kind = "Probe"   // failed probes and changes of a probe's result
	CRI     Kind = "CRI"     // a CRI call made for the pod, with its latency and error
	Status  Kind = "Status"  // a change of the pod's API status
)

// Event types of user-facing entries (v1.EventTypeNormal, v1.EventTypeWarning).
const (
	Normal  = "Normal"
	Warning = "Warning"
)

// Entry is one thing that happened to a pod.
type Entry struct {
	// Time is when it happened; Record sets it to the recorder's clock when
	// zero.
	Time time.Time `json:"time"`
	Kind Kind      `json:"kind"`
	// Container is the container it is about, if any.
	Container string `json:"container,omitempty"`
	// What happened or was decided: "create sandbox", "start container",
	// "kill container", "ContainerDied", "liveness probe failed",
	// "RunPodSandbox", "phase Pending -> Running".
	What string `json:"what"`
	// Reason is why; for user-facing entries the kubelet Event's reason
	// (BackOff, Unhealthy, Killing, Pulled, Started, Created, Failed...).
	Reason string `json:"reason,omitempty"`
	// Message gives details: exit code, probe or hook output, bytes pulled;
	// for user-facing entries the Event's message. Capped.
	Message string `json:"message,omitempty"`
	// Duration is Took as text (time.Duration.String): how long a CRI call,
	// pull, hook or probe took, or a back-off's delay. Record reads it when
	// Took is zero; timelines fill it from Took.
	Duration string `json:"duration,omitempty"`
	// Error is the error text of what failed. Capped.
	Error string `json:"error,omitempty"`
	// Event is "Normal" or "Warning" when the entry is user-facing: it was
	// also reported as a kubelet Event.
	Event string `json:"event,omitempty"`

	// Took is Duration for Go callers.
	Took time.Duration `json:"-"`
}

// Timeline is what a Recorder holds about one pod.
type Timeline struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	UID       types.UID `json:"uid"`
	// Entries are oldest first.
	Entries []Entry `json:"entries"`
	// Dropped counts the older entries the ring let go to stay in bounds.
	Dropped int `json:"dropped,omitempty"`
	// Gone is when the pod left the node (Forget); its timeline is kept for
	// Options.Retention after.
	Gone *time.Time `json:"gone,omitempty"`
}
