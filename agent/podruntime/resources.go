package podruntime

import (
	"bufio"
	"os"
	"path"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CPU and OOM constants (the kubelet's cm and qos packages).
const (
	minShares      = 2
	maxShares      = 262144
	sharesPerCPU   = 1024
	milliCPUToCPU  = 1000
	minQuotaPeriod = 1000 // µs

	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000
)

// PodQOS returns the pod's QoS class as the API defines it: Guaranteed when
// every container has CPU and memory limits equal to its requests (a missing
// request defaults to the limit), BestEffort when none has any CPU or memory
// request or limit, Burstable otherwise.
func PodQOS(pod *v1.Pod) v1.PodQOSClass {
	requests, limits := v1.ResourceList{}, v1.ResourceList{}
	guaranteed := true
	all := append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		req := effectiveRequests(&c)
		for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			if q, ok := req[name]; ok && !q.IsZero() {
				add(requests, name, q)
			}
			if q, ok := c.Resources.Limits[name]; ok && !q.IsZero() {
				add(limits, name, q)
			} else {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return v1.PodQOSBestEffort
	}
	if guaranteed {
		for name, r := range requests {
			if l, ok := limits[name]; !ok || l.Cmp(r) != 0 {
				guaranteed = false
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}

// effectiveRequests are a container's requests with the API's defaulting: a
// limit without a request is also the request.
func effectiveRequests(c *v1.Container) v1.ResourceList {
	out := v1.ResourceList{}
	for k, v := range c.Resources.Requests {
		out[k] = v
	}
	for k, v := range c.Resources.Limits {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

func add(l v1.ResourceList, name v1.ResourceName, q resource.Quantity) {
	sum := l[name]
	sum.Add(q)
	l[name] = sum
}

// CgroupParent returns the pod's cgroup parent as the kubelet names it. cgroupfs:
// <root>/kubepods/pod<uid> for Guaranteed pods, <root>/kubepods/<qos>/pod<uid>
// for burstable and besteffort ones. systemd: the leaf slice,
// kubepods[-<qos>]-pod<uid with - as _>.slice.
func CgroupParent(driver, root string, pod *v1.Pod) string {
	qos := PodQOS(pod)
	if driver == CgroupDriverSystemd {
		uid := strings.ReplaceAll(string(pod.UID), "-", "_")
		if qos == v1.PodQOSGuaranteed {
			return "kubepods-pod" + uid + ".slice"
		}
		return "kubepods-" + strings.ToLower(string(qos)) + "-pod" + uid + ".slice"
	}
	if root == "" {
		root = "/"
	}
	if qos == v1.PodQOSGuaranteed {
		return path.Join(root, "kubepods", "pod"+string(pod.UID))
	}
	return path.Join(root, "kubepods", strings.ToLower(string(qos)), "pod"+string(pod.UID))
}

// milliCPUToShares converts CPU in millicores to cgroup v1 cpu.shares.
func milliCPUToShares(milli int64) int64 {
	if milli == 0 {
		return minShares
	}
	shares := milli * sharesPerCPU / milliCPUToCPU
	return min(max(shares, minShares), maxShares)
}

// milliCPUToQuota converts a CPU limit to a CFS quota for period (µs); 0 means
// no limit.
func milliCPUToQuota(milli, period int64) int64 {
	if milli == 0 {
		return 0
	}
	return max(milli*period/milliCPUToCPU, minQuotaPeriod)
}

// linuxResources computes CRI resources from a CPU request (nil: none, then the
// limit stands in), a CPU limit and a memory limit (the kubelet's
// calculateLinuxResources).
func (m *Manager) linuxResources(cpuRequest, cpuLimit, memLimit *resource.Quantity) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{}
	if cpuRequest == nil && cpuLimit != nil {
		r.CpuShares = milliCPUToShares(cpuLimit.MilliValue())
	} else if cpuRequest != nil {
		r.CpuShares = milliCPUToShares(cpuRequest.MilliValue())
	} else {
		r.CpuShares = minShares
	}
	if memLimit != nil && memLimit.Value() != 0 {
		r.MemoryLimitInBytes = memLimit.Value()
	}
	if m.cpuQuota {
		var milli int64
		if cpuLimit != nil {
			milli = cpuLimit.MilliValue()
		}
		r.CpuQuota = milliCPUToQuota(milli, m.cpuPeriod)
		r.CpuPeriod = m.cpuPeriod
	}
	return r
}

// containerResources are the CRI resources of a container, oom_score_adj
// included.
func (m *Manager) containerResources(pod *v1.Pod, c *v1.Container) *runtimeapi.LinuxContainerResources {
	var cpuRequest *resource.Quantity
	if q, ok := c.Resources.Requests[v1.ResourceCPU]; ok {
		cpuRequest = &q
	}
	r := m.linuxResources(cpuRequest, c.Resources.Limits.Cpu(), c.Resources.Limits.Memory())
	r.OomScoreAdj = int64(oomScoreAdj(pod, c, m.memoryCapacity))
	return r
}

// sandboxResources are the pod-level resources (sum of the containers) and the
// overhead, for the sandbox config.
func (m *Manager) sandboxResources(pod *v1.Pod) (res, overhead *runtimeapi.LinuxContainerResources) {
	req, lim := podRequests(pod), podLimits(pod)
	var cpuRequest *resource.Quantity
	if q, ok := req[v1.ResourceCPU]; ok {
		cpuRequest = &q
	}
	res = m.linuxResources(cpuRequest, lim.Cpu(), lim.Memory())
	overhead = &runtimeapi.LinuxContainerResources{}
	if pod.Spec.Overhead != nil {
		cpu := pod.Spec.Overhead.Cpu()
		overhead = m.linuxResources(cpu, cpu, pod.Spec.Overhead.Memory())
	}
	return res, overhead
}

// podRequests sums app container requests, then takes the max with each
// (non-sidecar) init container and adds sidecars, as the scheduler does,
// simplified: sidecars' requests are added to the app containers' sum.
func podRequests(pod *v1.Pod) v1.ResourceList {
	sum := v1.ResourceList{}
	for i := range pod.Spec.Containers {
		for k, v := range pod.Spec.Containers[i].Resources.Requests {
			add(sum, k, v)
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		for k, v := range c.Resources.Requests {
			if isRestartableInit(c) {
				add(sum, k, v)
			} else if cur, ok := sum[k]; !ok || v.Cmp(cur) > 0 {
				sum[k] = v
			}
		}
	}
	return sum
}

// podLimits is like podRequests for limits; a limit is only a pod limit if
// every app container sets it.
func podLimits(pod *v1.Pod) v1.ResourceList {
	sum := v1.ResourceList{}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
		all := len(pod.Spec.Containers) > 0
		var total resource.Quantity
		for i := range pod.Spec.Containers {
			q, ok := pod.Spec.Containers[i].Resources.Limits[name]
			if !ok || q.IsZero() {
				all = false
				break
			}
			total.Add(q)
		}
		if !all {
			continue
		}
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			q, ok := c.Resources.Limits[name]
			if !ok {
				continue
			}
			if isRestartableInit(c) {
				total.Add(q)
			} else if q.Cmp(total) > 0 {
				total = q
			}
		}
		sum[name] = total
	}
	return sum
}

// oomScoreAdj is the kubelet's GetContainerOOMScoreAdjust: -997 for Guaranteed
// and node-critical pods, 1000 for BestEffort, and for Burstable 1000 minus the
// container's share of the node's memory in per mille, within [3, 999]; a
// sidecar gets no more than the pod's smallest app container would.
func oomScoreAdj(pod *v1.Pod, c *v1.Container, capacity int64) int {
	if pod.Spec.PriorityClassName == "system-node-critical" {
		return guaranteedOOMScoreAdj
	}
	switch PodQOS(pod) {
	case v1.PodQOSGuaranteed:
		return guaranteedOOMScoreAdj
	case v1.PodQOSBestEffort:
		return besteffortOOMScoreAdj
	}
	if capacity <= 0 {
		capacity = 1
	}
	adj := 1000 - 1000*memoryRequest(c)/capacity
	if isRestartableInit(c) && isInitContainer(pod, c.Name) {
		minReq := int64(-1)
		for i := range pod.Spec.Containers {
			r := memoryRequest(&pod.Spec.Containers[i])
			if minReq < 0 || r < minReq {
				minReq = r
			}
		}
		if minReq >= 0 {
			adj = min(adj, 1000-1000*minReq/capacity)
		}
	}
	if adj < 1000+guaranteedOOMScoreAdj {
		return 1000 + guaranteedOOMScoreAdj
	}
	if adj == besteffortOOMScoreAdj {
		return int(adj - 1)
	}
	return int(adj)
}

func memoryRequest(c *v1.Container) int64 {
	q := effectiveRequests(c)[v1.ResourceMemory]
	return q.Value()
}

func isInitContainer(pod *v1.Pod, name string) bool {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return true
		}
	}
	return false
}

// hostMemory returns MemTotal from /proc/meminfo in bytes (0 if unknown).
func hostMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}
