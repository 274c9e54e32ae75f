package qos

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Allocatable returns what the node offers pods, as the kubelet reports it:
// capacity minus kubeReserved, systemReserved and the hard eviction thresholds
// (memory.available for memory, nodefs.available for ephemeral-storage), never
// below zero. Resources absent from capacity are absent from the result.
func Allocatable(capacity, kubeReserved, systemReserved, hardEviction v1.ResourceList) v1.ResourceList {
	out := v1.ResourceList{}
	for name, c := range capacity {
		q := c.DeepCopy()
		for _, minus := range []v1.ResourceList{kubeReserved, systemReserved, hardEviction} {
			if r, ok := minus[name]; ok {
				q.Sub(r)
			}
		}
		if q.Sign() < 0 {
			q = *resource.NewQuantity(0, c.Format)
		}
		out[name] = q
	}
	return out
}

// EnforcedAllocatable is what the kubepods cgroup is limited to when
// enforceNodeAllocatable names "pods": capacity minus kubeReserved and
// systemReserved. The hard eviction threshold is not subtracted (as upstream):
// eviction acts before the cgroup limit is reached.
func EnforcedAllocatable(capacity, kubeReserved, systemReserved v1.ResourceList) v1.ResourceList {
	return Allocatable(capacity, kubeReserved, systemReserved, nil)
}
