package status

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// qosResources are the resources the QoS class is computed from.
var qosResources = []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory}

func isQOSResource(name v1.ResourceName) bool {
	return name == v1.ResourceCPU || name == v1.ResourceMemory
}

// podQOS returns the QoS class of pod by the upstream rules (v1qos.GetPodQOS): a
// class already in the pod's status wins (it is immutable); otherwise BestEffort
// when no container (or the pod, with pod-level resources) requests or limits CPU
// or memory, Guaranteed when every container limits both and requests equal
// limits, Burstable otherwise.
func podQOS(pod *v1.Pod) v1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	return computeQOS(pod)
}

func computeQOS(pod *v1.Pod) v1.PodQOSClass {
	requests := v1.ResourceList{}
	limits := v1.ResourceList{}
	guaranteed := true

	add := func(into v1.ResourceList, name v1.ResourceName, q resource.Quantity) {
		if !isQOSResource(name) || q.Sign() <= 0 {
			return
		}
		sum := q.DeepCopy()
		if prev, ok := into[name]; ok {
			sum.Add(prev)
		}
		into[name] = sum
	}
	limitsBoth := func(l v1.ResourceList) bool {
		for _, name := range qosResources {
			if _, ok := l[name]; !ok {
				return false
			}
		}
		return true
	}

	if usesPodLevelResources(pod) {
		for name, q := range pod.Spec.Resources.Requests {
			add(requests, name, q)
		}
		found := v1.ResourceList{}
		for name, q := range pod.Spec.Resources.Limits {
			add(limits, name, q)
			if isQOSResource(name) && q.Sign() > 0 {
				found[name] = q
			}
		}
		guaranteed = limitsBoth(found)
	} else {
		all := append(append([]v1.Container{}, pod.Spec.Containers...), pod.Spec.InitContainers...)
		for _, c := range all {
			for name, q := range c.Resources.Requests {
				add(requests, name, q)
			}
			found := v1.ResourceList{}
			for name, q := range c.Resources.Limits {
				add(limits, name, q)
				if isQOSResource(name) && q.Sign() > 0 {
					found[name] = q
				}
			}
			if !limitsBoth(found) {
				guaranteed = false
			}
		}
	}

	if len(requests) == 0 && len(limits) == 0 {
		return v1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
				break
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}

// usesPodLevelResources reports whether the pod sets CPU or memory at the pod
// level (spec.resources), which then decides the QoS class alone.
func usesPodLevelResources(pod *v1.Pod) bool {
	r := pod.Spec.Resources
	if r == nil {
		return false
	}
	for name := range r.Requests {
		if isQOSResource(name) {
			return true
		}
	}
	for name := range r.Limits {
		if isQOSResource(name) {
			return true
		}
	}
	return false
}
