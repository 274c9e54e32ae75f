package eviction

import (
	"cmp"
	"slices"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// rankFunc orders pods in place, the first to evict first.
type rankFunc func(pods []*v1.Pod, stats podStatsFunc)

// podCmp compares two pods for eviction: negative when a goes first.
type podCmp func(a, b *v1.Pod) int

// sortPods sorts pods by the comparisons in order, each breaking the previous
// one's ties; equal pods keep their order.
func sortPods(pods []*v1.Pod, cmps ...podCmp) {
	slices.SortStableFunc(pods, func(a, b *v1.Pod) int {
		for _, c := range cmps {
			if r := c(a, b); r != 0 {
				return r
			}
		}
		return 0
	})
}

// cmpBool puts true first.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	default:
		return 1
	}
}

// withStats compares pods with stats by c; pods without stats go first.
func withStats(stats podStatsFunc, c func(a, b statsapi.PodStats, pa, pb *v1.Pod) int) podCmp {
	return func(a, b *v1.Pod) int {
		sa, okA := stats(a)
		sb, okB := stats(b)
		if !okA || !okB {
			return cmpBool(!okA, !okB)
		}
		return c(sa, sb, a, b)
	}
}

// podPriority is the pod's priority, 0 when unset (the static default).
func podPriority(pod *v1.Pod) int32 {
	if pod.Spec.Priority != nil {
		return *pod.Spec.Priority
	}
	return 0
}

// byPriority puts lower priorities first.
func byPriority(a, b *v1.Pod) int { return cmp.Compare(podPriority(a), podPriority(b)) }

// podRequest is the pod's request of a resource as the scheduler computes it
// (containers, init containers and sidecars, pod-level resources, overhead).
func podRequest(pod *v1.Pod, name v1.ResourceName) int64 {
	q, ok := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})[name]
	if !ok {
		return 0
	}
	return q.Value()
}

func memoryUsage(ps statsapi.PodStats) int64 {
	if ps.Memory == nil || ps.Memory.WorkingSetBytes == nil {
		return 0
	}
	return int64(*ps.Memory.WorkingSetBytes)
}

func processUsage(ps statsapi.PodStats) uint64 {
	if ps.ProcessStats == nil || ps.ProcessStats.ProcessCount == nil {
		return 0
	}
	return *ps.ProcessStats.ProcessCount
}

// rankMemoryPressure: pods using more memory than they request first, then
// lower priority, then the largest use above the request.
func rankMemoryPressure(pods []*v1.Pod, stats podStatsFunc) {
	exceeds := withStats(stats, func(sa, sb statsapi.PodStats, a, b *v1.Pod) int {
		return cmpBool(memoryUsage(sa) > podRequest(a, v1.ResourceMemory), memoryUsage(sb) > podRequest(b, v1.ResourceMemory))
	})
	above := withStats(stats, func(sa, sb statsapi.PodStats, a, b *v1.Pod) int {
		return cmp.Compare(memoryUsage(sb)-podRequest(b, v1.ResourceMemory), memoryUsage(sa)-podRequest(a, v1.ResourceMemory))
	})
	sortPods(pods, exceeds, byPriority, above)
}

// rankPIDPressure: lower priority first, then the most processes.
func rankPIDPressure(pods []*v1.Pod, stats podStatsFunc) {
	procs := withStats(stats, func(sa, sb statsapi.PodStats, _, _ *v1.Pod) int {
		return cmp.Compare(processUsage(sb), processUsage(sa))
	})
	sortPods(pods, byPriority, procs)
}

// fsStats says which of a pod's filesystem stats count toward a disk signal.
type fsStats struct {
	root    bool // containers' writable layers
	logs    bool // containers' logs
	volumes bool // local volumes (emptyDir on disk, hostPath, configMap, gitRepo)
}

// localVolumeNames are the pod's volumes that live on the node's disk, as the
// kubelet counts them.
func localVolumeNames(pod *v1.Pod) map[string]bool {
	names := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil || v.GitRepo != nil || v.ConfigMap != nil ||
			(v.EmptyDir != nil && v.EmptyDir.Medium == v1.StorageMediumDefault) {
			names[v.Name] = true
		}
	}
	return names
}

func usedBytes(fs *statsapi.FsStats) int64 {
	if fs == nil || fs.UsedBytes == nil {
		return 0
	}
	return int64(*fs.UsedBytes)
}

func usedInodes(fs *statsapi.FsStats) int64 {
	if fs == nil || fs.InodesUsed == nil {
		return 0
	}
	return int64(*fs.InodesUsed)
}

// podDiskUsage sums the pod's usage of the disk resource (bytes for
// ephemeral-storage, inodes otherwise) over the selected stats.
func podDiskUsage(ps statsapi.PodStats, pod *v1.Pod, which fsStats, res v1.ResourceName) int64 {
	used := usedBytes
	if res == resourceInodes {
		used = usedInodes
	}
	var total int64
	for _, c := range ps.Containers {
		if which.root {
			total += used(c.Rootfs)
		}
		if which.logs {
			total += used(c.Logs)
		}
	}
	if which.volumes {
		local := localVolumeNames(pod)
		for i := range ps.VolumeStats {
			if local[ps.VolumeStats[i].Name] {
				total += used(&ps.VolumeStats[i].FsStats)
			}
		}
	}
	return total
}

// rankDiskPressure returns the ranking for a disk signal: pods using more than
// they request first, then lower priority, then the largest use above the
// request. Requests are of ephemeral-storage; inodes have none (the kubelet
// subtracts the ephemeral-storage request, in bytes, from the inode count;
// here inodes are compared as they are).
func rankDiskPressure(which fsStats, res v1.ResourceName) rankFunc {
	request := func(pod *v1.Pod) int64 {
		if res != v1.ResourceEphemeralStorage {
			return 0
		}
		return podRequest(pod, v1.ResourceEphemeralStorage)
	}
	return func(pods []*v1.Pod, stats podStatsFunc) {
		exceeds := withStats(stats, func(sa, sb statsapi.PodStats, a, b *v1.Pod) int {
			return cmpBool(podDiskUsage(sa, a, which, res) > request(a), podDiskUsage(sb, b, which, res) > request(b))
		})
		above := withStats(stats, func(sa, sb statsapi.PodStats, a, b *v1.Pod) int {
			return cmp.Compare(podDiskUsage(sb, b, which, res)-request(b), podDiskUsage(sa, a, which, res)-request(a))
		})
		sortPods(pods, exceeds, byPriority, above)
	}
}

// rankFuncs maps each signal to its ranking. With a dedicated imagefs, nodefs
// pressure counts logs and local volumes and imagefs pressure the writable
// layers; on one filesystem every kind counts for both.
func rankFuncs(dedicatedImageFs bool) map[Signal]rankFunc {
	all := fsStats{root: true, logs: true, volumes: true}
	node, image := all, all
	if dedicatedImageFs {
		node = fsStats{logs: true, volumes: true}
		image = fsStats{root: true}
	}
	return map[Signal]rankFunc{
		SignalMemoryAvailable:            rankMemoryPressure,
		SignalAllocatableMemoryAvailable: rankMemoryPressure,
		SignalPIDAvailable:               rankPIDPressure,
		SignalNodeFsAvailable:            rankDiskPressure(node, v1.ResourceEphemeralStorage),
		SignalNodeFsInodesFree:           rankDiskPressure(node, resourceInodes),
		SignalImageFsAvailable:           rankDiskPressure(image, v1.ResourceEphemeralStorage),
		SignalImageFsInodesFree:          rankDiskPressure(image, resourceInodes),
	}
}
