package qos

import (
	"time"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
)

// CPU constants of the kubelet (cm/helpers_linux.go).
const (
	MinShares     = 2
	MaxShares     = 262144
	SharesPerCPU  = 1024
	MilliCPUToCPU = 1000
	// DefaultCPUPeriod is the CFS period when none is configured: 100 ms, in µs.
	DefaultCPUPeriod = 100000
	// MinQuota is the smallest CFS quota set (1 ms, in µs).
	MinQuota = 1000
)

// Resources is a cgroup's configuration; nil fields are left as they are.
type Resources struct {
	CPUShares *uint64 // cgroup v1 cpu.shares; v2 cpu.weight is derived from it
	CPUQuota  *int64  // µs per period; -1: unlimited
	CPUPeriod *uint64 // µs
	Memory    *int64  // bytes; the limit
	PidsLimit *int64  // the most processes
}

// PodOptions are the node settings that shape a pod's cgroup.
type PodOptions struct {
	// CPUCFSQuota enforces CPU limits with CFS quota (the kubelet's cpuCFSQuota,
	// true by default there). Without it the quota is -1: unlimited.
	CPUCFSQuota bool
	// CPUCFSQuotaPeriod is the CFS period (cpuCFSQuotaPeriod; default 100 ms).
	CPUCFSQuotaPeriod time.Duration
	// PodPidsLimit is the most processes a pod may run (podPidsLimit; ≤ 0: no limit).
	PodPidsLimit int64
}

// PodResources returns the resources of a pod's cgroup as the kubelet's
// ResourceConfigForPod computes them: requests and limits summed over the pod as
// the scheduler does (init containers, sidecars, pod overhead, pod-level
// spec.resources); cpu shares from the CPU request; for Guaranteed pods the CFS
// quota and the memory limit, for Burstable pods each only when every container
// (or the pod) limits it, for BestEffort pods the minimum shares; the pids limit
// for every pod.
func PodResources(pod *v1.Pod, o PodOptions) Resources {
	requests := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	limits := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
	period := uint64(DefaultCPUPeriod)
	if o.CPUCFSQuotaPeriod > 0 {
		period = uint64(o.CPUCFSQuotaPeriod / time.Microsecond)
	}
	shares := MilliCPUToShares(requests.Cpu().MilliValue())
	quota := MilliCPUToQuota(limits.Cpu().MilliValue(), int64(period))
	if !o.CPUCFSQuota {
		quota = -1
	}
	memory := limits.Memory().Value()

	cpuLimited, memoryLimited := true, true
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Resources.Limits.Cpu().IsZero() {
			cpuLimited = false
		}
		if pod.Spec.Containers[i].Resources.Limits.Memory().IsZero() {
			memoryLimited = false
		}
	}
	if resourcehelper.IsPodLevelResourcesSet(pod) {
		if !pod.Spec.Resources.Limits.Cpu().IsZero() {
			cpuLimited = true
		}
		if !pod.Spec.Resources.Limits.Memory().IsZero() {
			memoryLimited = true
		}
	}

	var r Resources
	switch Class(pod) {
	case v1.PodQOSGuaranteed:
		r.CPUShares, r.CPUQuota, r.CPUPeriod, r.Memory = &shares, &quota, &period, &memory
	case v1.PodQOSBurstable:
		r.CPUShares = &shares
		if cpuLimited {
			r.CPUQuota, r.CPUPeriod = &quota, &period
		}
		if memoryLimited {
			r.Memory = &memory
		}
	default:
		minShares := uint64(MinShares)
		r.CPUShares = &minShares
	}
	if o.PodPidsLimit > 0 {
		pids := o.PodPidsLimit
		r.PidsLimit = &pids
	}
	return r
}

// MilliCPUToShares converts a CPU amount in millicores to cgroup v1 cpu.shares:
// 1024 per CPU, at least 2, at most 262144.
func MilliCPUToShares(milli int64) uint64 {
	if milli <= 0 {
		return MinShares
	}
	shares := milli * SharesPerCPU / MilliCPUToCPU
	return uint64(min(max(shares, MinShares), MaxShares))
}

// MilliCPUToQuota converts a CPU limit to a CFS quota for period (µs): 0 for no
// limit, else at least 1 ms.
func MilliCPUToQuota(milli, period int64) int64 {
	if milli == 0 {
		return 0
	}
	return max(milli*period/MilliCPUToCPU, MinQuota)
}

// SharesToWeight converts cgroup v1 cpu.shares to cgroup v2 cpu.weight as runc and
// the kubelet do: [2, 262144] maps onto [1, 10000].
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, MinShares), MaxShares)
	return 1 + (shares-2)*9999/262142
}

// PodRequests are the pod's requests summed as the scheduler sums them (init
// containers, sidecars, overhead, pod-level resources).
func PodRequests(pod *v1.Pod) v1.ResourceList {
	return resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
}
