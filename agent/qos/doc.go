// Package qos is the cgroup half of the kubelet's container manager: the QoS
// class of a pod, the OOM score adjustment of its containers, the cgroup
// resources of a pod as the kubelet computes them, node allocatable, and a Manager
// that keeps the kubepods hierarchy on the node:
//
//	kubepods/                 limited to node allocatable (enforceNodeAllocatable: [pods])
//	kubepods/pod<uid>         Guaranteed pods
//	kubepods/burstable/       cpu shares = the burstable pods' CPU requests
//	kubepods/burstable/pod<uid>
//	kubepods/besteffort/      cpu shares = 2
//	kubepods/besteffort/pod<uid>
//
// with the cgroupfs driver, or kubepods.slice/kubepods-burstable.slice/
// kubepods-burstable-pod<uid>.slice with the systemd driver, on cgroup v1 or v2
// (through github.com/containerd/cgroups/v3; the version is picked once, in New).
// A pod's cgroup is made before its sandbox and removed after the pod has
// terminated; cgroups of pods nobody wants any more are removed by Cleanup.
//
// The arithmetic (Class, OOMScoreAdj, PodResources, Allocatable) is usable on its
// own, without cgroups.
package qos
