package qos

import (
	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
)

// OOM score adjustments of the kubelet's policy.
const (
	// GuaranteedOOMScoreAdj is given to Guaranteed pods' and node-critical pods'
	// containers: the last to be killed.
	GuaranteedOOMScoreAdj = -997
	// BestEffortOOMScoreAdj is given to BestEffort pods' containers: the first.
	BestEffortOOMScoreAdj = 1000
	// KubeletOOMScoreAdj is the kubelet's own (and so the embedded runtime's).
	KubeletOOMScoreAdj = -999
)

// OOMScoreAdj returns the oom_score_adj of a container of pod, as the kubelet's
// GetContainerOOMScoreAdjust computes it: -997 for Guaranteed and node-critical
// pods, 1000 for BestEffort, and for Burstable 1000 - 1000*request/capacity kept
// within [3, 999], where request is the container's memory request (plus its share
// of a pod-level memory request that the containers do not claim), and a sidecar
// never scores above the pod's smallest regular container.
func OOMScoreAdj(pod *v1.Pod, container *v1.Container, memoryCapacity int64) int {
	if pod.Spec.PriorityClassName == "system-node-critical" {
		return GuaranteedOOMScoreAdj
	}
	switch Class(pod) {
	case v1.PodQOSGuaranteed:
		return GuaranteedOOMScoreAdj
	case v1.PodQOSBestEffort:
		return BestEffortOOMScoreAdj
	}
	if memoryCapacity <= 0 {
		memoryCapacity = 1
	}
	request := memoryRequest(container)
	if resourcehelper.IsPodLevelRequestsSet(pod) {
		request += unclaimedPodMemoryPerContainer(pod)
	}
	adj := 1000 - 1000*request/memoryCapacity
	if isSidecar(pod, container) {
		if smallest, ok := smallestRegularMemoryRequest(pod); ok {
			adj = min(adj, 1000-1000*smallest/memoryCapacity)
		}
	}
	if adj < 1000+GuaranteedOOMScoreAdj {
		return 1000 + GuaranteedOOMScoreAdj
	}
	if adj == BestEffortOOMScoreAdj {
		return BestEffortOOMScoreAdj - 1
	}
	return int(adj)
}

// memoryRequest is a container's memory request; a limit without a request counts
// as the request, as API defaulting makes it.
func memoryRequest(c *v1.Container) int64 {
	if q, ok := c.Resources.Requests[v1.ResourceMemory]; ok {
		return q.Value()
	}
	if q, ok := c.Resources.Limits[v1.ResourceMemory]; ok {
		return q.Value()
	}
	return 0
}

// unclaimedPodMemoryPerContainer spreads the part of a pod-level memory request
// that the containers' own requests leave over evenly across all containers.
func unclaimedPodMemoryPerContainer(pod *v1.Pod) int64 {
	podRequest := pod.Spec.Resources.Requests.Memory().Value()
	if podRequest == 0 {
		return 0
	}
	n := int64(len(pod.Spec.Containers) + len(pod.Spec.InitContainers))
	if n == 0 {
		return 0
	}
	claimed := resourcehelper.AggregateContainerRequests(pod, resourcehelper.PodResourcesOptions{})
	return (podRequest - claimed.Memory().Value()) / n
}

func isSidecar(pod *v1.Pod, c *v1.Container) bool {
	if c.RestartPolicy == nil || *c.RestartPolicy != v1.ContainerRestartPolicyAlways {
		return false
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == c.Name {
			return true
		}
	}
	return false
}

func smallestRegularMemoryRequest(pod *v1.Pod) (int64, bool) {
	if len(pod.Spec.Containers) == 0 {
		return 0, false
	}
	smallest := memoryRequest(&pod.Spec.Containers[0])
	for i := range pod.Spec.Containers[1:] {
		smallest = min(smallest, memoryRequest(&pod.Spec.Containers[i+1]))
	}
	return smallest, true
}
