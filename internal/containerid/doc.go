// Package containerid is a container's ID as a pod status carries it: the
// runtime's type and the runtime's own (CRI) ID, written "<type>://<id>"
// (nodekit://0123abcd...), as the kubelet's kubecontainer.ContainerID. The
// status generator and the node's pod list build them; the pod runtime, the
// probes and the status manager turn them back into CRI IDs.
package containerid
