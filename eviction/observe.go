package eviction

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// observation is what a Summary says about one signal.
type observation struct {
	available *resource.Quantity
	capacity  *resource.Quantity
	// time is when the stats were taken (zero when the Summary does not say).
	time time.Time
}

type observations map[Signal]observation

// podStatsFunc gives a pod's stats from the Summary, by UID.
type podStatsFunc func(pod *v1.Pod) (statsapi.PodStats, bool)

func podStatsByUID(summary *statsapi.Summary) podStatsFunc {
	byUID := make(map[string]statsapi.PodStats, len(summary.Pods))
	for _, ps := range summary.Pods {
		byUID[ps.PodRef.UID] = ps
	}
	return func(pod *v1.Pod) (statsapi.PodStats, bool) {
		ps, ok := byUID[string(pod.UID)]
		return ps, ok
	}
}

func bytesQuantity(v uint64) *resource.Quantity {
	return resource.NewQuantity(int64(v), resource.BinarySI)
}
func countQuantity(v uint64) *resource.Quantity {
	return resource.NewQuantity(int64(v), resource.DecimalSI)
}

// observe derives the signals from a Summary as the kubelet does.
// allocatableMemory (bytes, 0 when unknown) is the fallback for
// allocatableMemory.available when the Summary has no "pods" system container.
func observe(summary *statsapi.Summary, allocatableMemory uint64) observations {
	obs := observations{}
	node := summary.Node

	if m := node.Memory; m != nil && m.AvailableBytes != nil && m.WorkingSetBytes != nil {
		obs[SignalMemoryAvailable] = observation{
			available: bytesQuantity(*m.AvailableBytes),
			capacity:  bytesQuantity(*m.AvailableBytes + *m.WorkingSetBytes),
			time:      m.Time.Time,
		}
	}

	if o, ok := allocatableObservation(summary, allocatableMemory); ok {
		obs[SignalAllocatableMemoryAvailable] = o
	}

	if fs := node.Fs; fs != nil {
		addFs(obs, fs, SignalNodeFsAvailable, SignalNodeFsInodesFree)
	}
	if node.Runtime != nil && node.Runtime.ImageFs != nil {
		addFs(obs, node.Runtime.ImageFs, SignalImageFsAvailable, SignalImageFsInodesFree)
	}

	if rl := node.Rlimit; rl != nil && rl.MaxPID != nil && rl.NumOfRunningProcesses != nil {
		obs[SignalPIDAvailable] = observation{
			available: resource.NewQuantity(*rl.MaxPID-*rl.NumOfRunningProcesses, resource.DecimalSI),
			capacity:  resource.NewQuantity(*rl.MaxPID, resource.DecimalSI),
			time:      rl.Time.Time,
		}
	}
	return obs
}

func addFs(obs observations, fs *statsapi.FsStats, bytesSignal, inodesSignal Signal) {
	if fs.AvailableBytes != nil && fs.CapacityBytes != nil {
		obs[bytesSignal] = observation{available: bytesQuantity(*fs.AvailableBytes), capacity: bytesQuantity(*fs.CapacityBytes), time: fs.Time.Time}
	}
	if fs.InodesFree != nil && fs.Inodes != nil {
		obs[inodesSignal] = observation{available: countQuantity(*fs.InodesFree), capacity: countQuantity(*fs.Inodes), time: fs.Time.Time}
	}
}

// allocatableObservation reads allocatableMemory.available from the "pods"
// system container (its memory limit is the node's allocatable memory), or,
// without one, computes allocatableMemory minus the pods' working sets.
func allocatableObservation(summary *statsapi.Summary, allocatableMemory uint64) (observation, bool) {
	var podsContainer *statsapi.ContainerStats
	for i := range summary.Node.SystemContainers {
		if summary.Node.SystemContainers[i].Name == statsapi.SystemContainerPods {
			podsContainer = &summary.Node.SystemContainers[i]
			break
		}
	}
	if podsContainer != nil {
		if m := podsContainer.Memory; m != nil && m.AvailableBytes != nil && m.WorkingSetBytes != nil {
			return observation{
				available: bytesQuantity(*m.AvailableBytes),
				capacity:  bytesQuantity(*m.AvailableBytes + *m.WorkingSetBytes),
				time:      m.Time.Time,
			}, true
		}
	}
	if allocatableMemory == 0 {
		return observation{}, false
	}
	var ws uint64
	var at time.Time
	if podsContainer != nil && podsContainer.Memory != nil && podsContainer.Memory.WorkingSetBytes != nil {
		ws, at = *podsContainer.Memory.WorkingSetBytes, podsContainer.Memory.Time.Time
	} else {
		for _, ps := range summary.Pods {
			if ps.Memory != nil && ps.Memory.WorkingSetBytes != nil {
				ws += *ps.Memory.WorkingSetBytes
				if ps.Memory.Time.After(at) {
					at = ps.Memory.Time.Time
				}
			}
		}
	}
	return observation{
		available: resource.NewQuantity(int64(allocatableMemory)-int64(ws), resource.BinarySI),
		capacity:  bytesQuantity(allocatableMemory),
		time:      at,
	}, true
}

// met reports whether threshold t is met by obs; with enforceMinReclaim the
// signal must be back above value + min reclaim for t to be resolved.
func met(t Threshold, obs observations, enforceMinReclaim bool) (ok, observed bool) {
	o, found := obs[t.Signal]
	if !found {
		return false, false
	}
	q := t.Value.quantity(o.capacity)
	if enforceMinReclaim && t.MinReclaim != nil {
		q.Add(*t.MinReclaim.quantity(o.capacity))
	}
	return q.Cmp(*o.available) > 0, true
}

// thresholdQuantity gives the quantity a threshold resolves to and the available
// amount, for messages.
func thresholdQuantity(t Threshold, obs observations) (quantity, available *resource.Quantity, ok bool) {
	o, found := obs[t.Signal]
	if !found {
		return nil, nil, false
	}
	return t.Value.quantity(o.capacity), o.available, true
}

// statsUpdated reports whether the signal's stats are newer than in last (or
// carry no time), so the manager does not act twice on the same numbers.
func statsUpdated(sig Signal, obs, last observations) bool {
	o, ok := obs[sig]
	if !ok {
		return false
	}
	l, ok := last[sig]
	return !ok || o.time.IsZero() || o.time.After(l.time)
}
