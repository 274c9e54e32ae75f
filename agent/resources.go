package agent

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"

	"github.com/nodekit-dev/nodekit/agent/qos"
	"github.com/nodekit-dev/nodekit/agent/stats"
	"github.com/nodekit-dev/nodekit/eviction"
)

// nodeResources is what the node has and what it offers pods.
type nodeResources struct {
	capacity    v1.ResourceList
	allocatable v1.ResourceList // capacity − reserved − hard eviction thresholds
	enforced    v1.ResourceList // what kubepods is limited to
}

// computeNodeResources derives the node's capacity from the machine and its
// allocatable from the KubeletConfiguration: kubeReserved, systemReserved,
// evictionHard (memory.available, nodefs.available) and enforceNodeAllocatable.
func computeNodeResources(k *kubeletconfig.KubeletConfiguration, machine v1.ResourceList, hardEviction v1.ResourceList) (nodeResources, error) {
	kube, err := parseReserved("kubeReserved", k.KubeReserved)
	if err != nil {
		return nodeResources{}, err
	}
	system, err := parseReserved("systemReserved", k.SystemReserved)
	if err != nil {
		return nodeResources{}, err
	}
	capacity := machine.DeepCopy()
	capacity[v1.ResourcePods] = *resource.NewQuantity(int64(k.MaxPods), resource.DecimalSI)
	r := nodeResources{
		capacity:    capacity,
		allocatable: qos.Allocatable(capacity, kube, system, hardEviction),
	}
	enforce := false
	for _, e := range k.EnforceNodeAllocatable {
		switch e {
		case "pods":
			enforce = true
		case "none", "system-reserved", "kube-reserved", "system-reserved-compressible", "kube-reserved-compressible":
			// Reserved cgroups need kubeReservedCgroup/systemReservedCgroup, which the
			// agent does not manage; accepted and ignored.
		default:
			return nodeResources{}, fmt.Errorf("enforceNodeAllocatable: unknown value %q (want pods, system-reserved, kube-reserved or none)", e)
		}
	}
	if enforce {
		r.enforced = qos.EnforcedAllocatable(capacity, kube, system)
		delete(r.enforced, v1.ResourcePods)
		delete(r.enforced, v1.ResourceEphemeralStorage)
		if _, ok := kube["pid"]; !ok {
			if _, ok := system["pid"]; !ok {
				delete(r.enforced, "pid")
			}
		}
	} else {
		// kubepods still gets the node's CPU shares, as upstream.
		r.enforced = v1.ResourceList{v1.ResourceCPU: capacity[v1.ResourceCPU]}
	}
	delete(r.capacity, "pid")
	delete(r.allocatable, "pid")
	return r, nil
}

// parseReserved parses kubeReserved/systemReserved ("cpu: 500m", "memory: 1Gi",
// "ephemeral-storage: 1Gi", "pid: 1000"); errors name the field and key.
func parseReserved(field string, m map[string]string) (v1.ResourceList, error) {
	out := v1.ResourceList{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v1.ResourceName(k) {
		case v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage, "pid":
		default:
			if !strings.HasPrefix(k, v1.ResourceHugePagesPrefix) {
				return nil, fmt.Errorf("%s[%q]: unknown resource (want cpu, memory, ephemeral-storage, pid or hugepages-<size>)", field, k)
			}
		}
		q, err := resource.ParseQuantity(m[k])
		if err != nil {
			return nil, fmt.Errorf("%s[%q]: invalid quantity %q: %w", field, k, m[k], err)
		}
		if q.Sign() < 0 {
			return nil, fmt.Errorf("%s[%q]: negative quantity %q", field, k, m[k])
		}
		out[v1.ResourceName(k)] = q
	}
	return out, nil
}

// machineResources is the node's capacity as cAdvisor describes the machine:
// CPUs, memory, hugepages, the root dir's filesystem (ephemeral-storage); and
// the pid limit, which eviction's pid.available and kubepods' pids limit use.
func machineResources(node *stats.Node) (v1.ResourceList, error) {
	mi, err := node.Machine()
	if err != nil {
		return nil, err
	}
	out := v1.ResourceList{
		v1.ResourceCPU:    *resource.NewQuantity(int64(mi.NumCores), resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(int64(mi.MemoryCapacity), resource.BinarySI),
	}
	for size, pages := range mi.HugePages {
		name := v1.ResourceName(v1.ResourceHugePagesPrefix + resource.NewQuantity(int64(size), resource.BinarySI).String())
		out[name] = *resource.NewQuantity(int64(size*pages), resource.BinarySI)
	}
	if mi.FsCapacity > 0 {
		out[v1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(mi.FsCapacity), resource.BinarySI)
	}
	if data, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
			out["pid"] = *resource.NewQuantity(n, resource.DecimalSI)
		}
	}
	return out, nil
}

// hardEvictionReservation is what the hard eviction thresholds keep from pods:
// memory.available as memory, nodefs.available as ephemeral-storage (the
// kubelet's GetNodeAllocatableReservation); a percentage is of the machine's
// capacity.
func hardEvictionReservation(cfg eviction.Config, machine v1.ResourceList) v1.ResourceList {
	out := v1.ResourceList{}
	for _, t := range cfg.Thresholds {
		if t.GracePeriod != 0 {
			continue
		}
		var res v1.ResourceName
		switch t.Signal {
		case eviction.SignalMemoryAvailable:
			res = v1.ResourceMemory
		case eviction.SignalNodeFsAvailable:
			res = v1.ResourceEphemeralStorage
		default:
			continue
		}
		if t.Value.Quantity != nil {
			out[res] = t.Value.Quantity.DeepCopy()
		} else if c, ok := machine[res]; ok {
			out[res] = *resource.NewQuantity(int64(t.Value.Percentage*float64(c.Value())), resource.BinarySI)
		}
	}
	return out
}
