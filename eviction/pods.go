package eviction

import (
	v1 "k8s.io/api/core/v1"
)

// Pod annotations the kubelet's config sources set.
const (
	configSourceAnnotation = "kubernetes.io/config.source"
	configMirrorAnnotation = "kubernetes.io/config.mirror"
	apiserverSource        = "api"
)

// SystemCriticalPriority is the lowest priority of system-critical pods
// (system-cluster-critical and system-node-critical).
const SystemCriticalPriority int32 = 2000000000

// IsCriticalPod is the default Options.IsCritical, the kubelet's rule: static
// pods (a kubernetes.io/config.source annotation other than "api"), mirror pods
// and pods with a system-critical priority. Critical pods are never evicted and
// always admitted.
//
// Every pod a manifest directory gives is static, so under this rule an agent
// running only static pods evicts nothing; pass another IsCritical to change it.
func IsCriticalPod(pod *v1.Pod) bool {
	if src, ok := pod.Annotations[configSourceAnnotation]; ok && src != apiserverSource {
		return true
	}
	if _, ok := pod.Annotations[configMirrorAnnotation]; ok {
		return true
	}
	return pod.Spec.Priority != nil && *pod.Spec.Priority >= SystemCriticalPriority
}

// isBestEffort reports whether the pod's QoS class is BestEffort: the class in
// its status when set, else no container, init container or pod-level CPU or
// memory request or limit above zero.
func isBestEffort(pod *v1.Pod) bool {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass == v1.PodQOSBestEffort
	}
	sets := func(l v1.ResourceList) bool {
		for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			if q, ok := l[name]; ok && q.Sign() > 0 {
				return true
			}
		}
		return false
	}
	if r := pod.Spec.Resources; r != nil && (sets(r.Requests) || sets(r.Limits)) {
		return false
	}
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if sets(c.Resources.Requests) || sets(c.Resources.Limits) {
				return false
			}
		}
	}
	return true
}

// toleratesMemoryPressure reports whether the pod tolerates the node's
// memory-pressure taint (NoSchedule, no value), by the API's toleration rules.
func toleratesMemoryPressure(pod *v1.Pod) bool {
	for _, t := range pod.Spec.Tolerations {
		if t.Effect != "" && t.Effect != v1.TaintEffectNoSchedule {
			continue
		}
		if t.Key != "" && t.Key != v1.TaintNodeMemoryPressure {
			continue
		}
		switch t.Operator {
		case v1.TolerationOpExists:
			return true
		case "", v1.TolerationOpEqual:
			if t.Value == "" {
				return true
			}
		}
		// Lt and Gt compare numbers; the taint has no value, so they never match.
	}
	return false
}
