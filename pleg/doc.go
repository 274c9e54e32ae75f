// Package pleg is the pod lifecycle event generator: it watches the container
// runtime (through the CRI) and tells the agent when a pod's containers started,
// died, were removed or changed, keeping a cache of each pod's runtime status that
// readers can wait on ("give me a status newer than t").
//
// Two implementations sit behind the PLEG interface: a generic one (NewGeneric)
// that relists all sandboxes and containers every second and diffs them, and an
// evented one (New, the default) driven by the runtime's GetContainerEvents
// stream, with a slow relist as a safety net and a fallback to relisting when the
// stream keeps failing or the runtime does not implement it.
//
// Pods are told apart by the kubelet's io.kubernetes.pod.uid label on sandboxes
// and containers; objects without it are not the agent's and are ignored. Events
// about containers carry the container id in Event.Data; a change of a sandbox
// gives PodSync with the sandbox id. ContainerChanged (a container created, or in
// an unknown state) is delivered too, although the kubelet drops it; consumers may
// ignore it. Inspect reads one pod's status directly, for callers that cannot wait
// for the next event.
package pleg
