package podruntime

import (
	"bufio"
	"os"
	"path"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/agent/qos"
)

// PodQOS returns the pod's QoS class (qos.Class, the module's one QoS function).
func PodQOS(pod *v1.Pod) v1.PodQOSClass { return qos.Class(pod) }

// CgroupParent returns the pod's cgroup parent as the kubelet names it, for an
// agent without a cgroup manager (Options.PodCgroups): cgroupfs:
// <root>/kubepods/pod<uid> for Guaranteed pods, <root>/kubepods/<qos>/pod<uid>
// for burstable and besteffort ones. systemd: the leaf slice,
// kubepods[-<qos>]-pod<uid with - as _>.slice.
func CgroupParent(driver, root string, pod *v1.Pod) string {
	class := PodQOS(pod)
	if driver == CgroupDriverSystemd {
		uid := strings.ReplaceAll(string(pod.UID), "-", "_")
		if class == v1.PodQOSGuaranteed {
			return "kubepods-pod" + uid + ".slice"
		}
		return "kubepods-" + strings.ToLower(string(class)) + "-pod" + uid + ".slice"
	}
	if root == "" {
		root = "/"
	}
	if class == v1.PodQOSGuaranteed {
		return path.Join(root, "kubepods", "pod"+string(pod.UID))
	}
	return path.Join(root, "kubepods", strings.ToLower(string(class)), "pod"+string(pod.UID))
}

// linuxResources computes CRI resources from a CPU request (nil: none, then the
// limit stands in), a CPU limit and a memory limit (the kubelet's
// calculateLinuxResources).
func (m *Manager) linuxResources(cpuRequest, cpuLimit, memLimit *resource.Quantity) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{}
	switch {
	case cpuRequest == nil && cpuLimit != nil:
		r.CpuShares = int64(qos.MilliCPUToShares(cpuLimit.MilliValue()))
	case cpuRequest != nil:
		r.CpuShares = int64(qos.MilliCPUToShares(cpuRequest.MilliValue()))
	default:
		r.CpuShares = qos.MinShares
	}
	if memLimit != nil && memLimit.Value() != 0 {
		r.MemoryLimitInBytes = memLimit.Value()
	}
	if m.cpuQuota {
		var milli int64
		if cpuLimit != nil {
			milli = cpuLimit.MilliValue()
		}
		r.CpuQuota = qos.MilliCPUToQuota(milli, m.cpuPeriod)
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
	r.OomScoreAdj = int64(qos.OOMScoreAdj(pod, c, m.memoryCapacity))
	return r
}

// sandboxResources are the pod's resources summed as the scheduler does (without
// the overhead) and the overhead, for the sandbox config.
func (m *Manager) sandboxResources(pod *v1.Pod) (res, overhead *runtimeapi.LinuxContainerResources) {
	opts := resourcehelper.PodResourcesOptions{ExcludeOverhead: true}
	req, lim := resourcehelper.PodRequests(pod, opts), resourcehelper.PodLimits(pod, opts)
	var cpuRequest *resource.Quantity
	if q, ok := req[v1.ResourceCPU]; ok {
		cpuRequest = &q
	}
	var cpuLimit, memLimit *resource.Quantity
	if q, ok := lim[v1.ResourceCPU]; ok {
		cpuLimit = &q
	}
	if q, ok := lim[v1.ResourceMemory]; ok {
		memLimit = &q
	}
	res = m.linuxResources(cpuRequest, cpuLimit, memLimit)
	overhead = &runtimeapi.LinuxContainerResources{}
	if pod.Spec.Overhead != nil {
		cpu := pod.Spec.Overhead.Cpu()
		overhead = m.linuxResources(cpu, cpu, pod.Spec.Overhead.Memory())
	}
	return res, overhead
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
