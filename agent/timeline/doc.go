// Package timeline keeps, per pod, what happened to it and why: source
// updates, PLEG events, what each sync decided (create sandbox, start, kill,
// restart) and for what reason, back-off waits, image pulls, hook and probe
// results, CRI calls with their latency and error, status transitions. It is
// what `describe pod` ends with and what the agent serves as JSON on
// /debug/pods/{namespace}/{name}/timeline.
//
// A Recorder holds one ring of entries per pod, in bounded memory: at most
// Options.Entries entries and Options.PodBytes bytes of text per pod (the
// oldest go first and are counted in Timeline.Dropped), Message and Error cut
// at Options.MaxMessage bytes and marked "[truncated]". A pod is recorded
// once Add has seen it; Forget marks it gone and its timeline stays readable
// for Options.Retention (at most Options.MaxGone gone pods are kept, the
// oldest dropped first). Recording takes the pod's own lock and, to find the
// pod, a shared read lock: pods never wait for each other. A Log (Recorder.Pod,
// or FromContext for a context made by WithPod) records into one pod without
// any lookup, so code deep in a call chain, such as an instrumented CRI
// client, records into the pod a sync is about without a parameter threaded
// through.
//
// Entries whose Event is set are user-facing: they were also reported as the
// kubelet's Events (Event is the event type, Reason its reason, Message its
// message), and in cluster mode they are what the API server shows as the
// pod's Events. The packages that report events (agent/podruntime, probes)
// record the entry and the event in one place, so the timeline has every
// event and the events are its user-facing subset.
//
// StatusChanged turns two versions of a pod's status into Status entries
// (phase, conditions, container states and readiness); it fits the status
// manager's change hook (agent/status.WithChanges).
package timeline
