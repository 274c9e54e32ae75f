// Package status computes and keeps the API status of the agent's pods.
//
// Generate turns a pod's runtime view (a pleg.PodStatus built from CRI sandbox and
// container statuses) into a v1.PodStatus by the kubelet's rules: container
// statuses for init containers (including restartable init containers, i.e.
// sidecars) and app containers, the pod phase (upstream getPhase), the five
// kubelet-owned conditions (PodReadyToStartContainers, Initialized,
// ContainersReady, Ready with readiness gates, PodScheduled), pod IPs, start time
// and QoS class.
//
// A Manager is the agent's source of truth for pod statuses: it versions every
// change (a new version only when something the kubelet owns changed), refuses
// transitions out of a terminal phase, applies probe results
// (SetContainerReadiness, SetContainerStartup) and writes each pod's newest
// status to a pluggable Sink, asynchronously, with retries and never out of
// order. MemorySink is the in-memory Sink; an API server sink can come later.
// WithChanges hands every new version, with the one it replaces, to a
// function as it is stored: the agent's per-pod timeline records the
// transitions (timeline.Recorder.StatusChanged).
package status
