package qos

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Class returns the pod's QoS class by the API's rules (upstream's
// ComputePodQOS), ignoring any class already in its status:
//
//   - with pod-level resources (spec.resources), those alone decide;
//   - otherwise every container and init container counts;
//   - BestEffort when nothing requests or limits CPU or memory, Guaranteed when
//     CPU and memory are limited everywhere and requests equal limits, Burstable
//     otherwise.
//
// Like upstream it expects a defaulted pod (a limit without a request has had the
// request set to the limit, as the API server and the manifest source do): a pod
// with limits only is Burstable here.
//
// It is the one QoS function of the module: status, cgroups, OOM scores and
// eviction all use it.
func Class(pod *v1.Pod) v1.PodQOSClass {
	requests, limits := v1.ResourceList{}, v1.ResourceList{}
	guaranteed := true
	if resourcehelper.IsPodLevelResourcesSet(pod) {
		for name, q := range pod.Spec.Resources.Requests {
			addQOS(requests, name, q)
		}
		if !collectLimits(pod.Spec.Resources.Limits, limits) {
			guaranteed = false
		}
	} else {
		all := make([]v1.Container, 0, len(pod.Spec.Containers)+len(pod.Spec.InitContainers))
		all = append(append(all, pod.Spec.Containers...), pod.Spec.InitContainers...)
		for i := range all {
			for name, q := range all[i].Resources.Requests {
				addQOS(requests, name, q)
			}
			if !collectLimits(all[i].Resources.Limits, limits) {
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

// StatusClass is the class a pod's status reports: the one already recorded there
// (it never changes once set), else Class.
func StatusClass(pod *v1.Pod) v1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	return Class(pod)
}

func isQOSResource(name v1.ResourceName) bool {
	return name == v1.ResourceCPU || name == v1.ResourceMemory
}

// addQOS adds a positive CPU or memory quantity to list.
func addQOS(list v1.ResourceList, name v1.ResourceName, q resource.Quantity) {
	if !isQOSResource(name) || q.Sign() <= 0 {
		return
	}
	sum := q.DeepCopy()
	if prev, ok := list[name]; ok {
		sum.Add(prev)
	}
	list[name] = sum
}

// collectLimits adds from's CPU and memory limits to into and reports whether
// both were limited.
func collectLimits(from, into v1.ResourceList) bool {
	found := 0
	for name, q := range from {
		if isQOSResource(name) && q.Sign() > 0 {
			addQOS(into, name, q)
			found++
		}
	}
	return found == 2
}
