package eviction

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Signal names a node resource whose shortage can trigger evictions; the names
// are the kubelet's (the keys of evictionHard and evictionSoft).
type Signal string

// The signals the manager observes. Every threshold is "less than": it is met
// when the observed available amount drops below the threshold's value.
const (
	// SignalMemoryAvailable is the node's memory capacity minus its working set.
	SignalMemoryAvailable Signal = "memory.available"
	// SignalAllocatableMemoryAvailable is the memory available to pods: the
	// pods' allocatable memory minus the pods' working set.
	SignalAllocatableMemoryAvailable Signal = "allocatableMemory.available"
	// SignalNodeFsAvailable is the free space of the filesystem holding the
	// agent's root directory, volumes and logs.
	SignalNodeFsAvailable Signal = "nodefs.available"
	// SignalNodeFsInodesFree is the free inodes of the nodefs.
	SignalNodeFsInodesFree Signal = "nodefs.inodesFree"
	// SignalImageFsAvailable is the free space of the filesystem where the
	// runtime keeps images and writable layers.
	SignalImageFsAvailable Signal = "imagefs.available"
	// SignalImageFsInodesFree is the free inodes of the imagefs.
	SignalImageFsInodesFree Signal = "imagefs.inodesFree"
	// SignalPIDAvailable is the number of process IDs still available.
	SignalPIDAvailable Signal = "pid.available"
)

// Resources that exist only inside the eviction manager, as in the kubelet: they
// appear in eviction messages ("The node was low on resource: inodes.").
const (
	resourceInodes v1.ResourceName = "inodes"
	resourcePIDs   v1.ResourceName = "pids"
)

// signalInfo is what the manager knows about a signal: the resource it reclaims
// and the node condition it drives.
type signalInfo struct {
	resource  v1.ResourceName
	condition v1.NodeConditionType
}

var signals = map[Signal]signalInfo{
	SignalMemoryAvailable:            {v1.ResourceMemory, v1.NodeMemoryPressure},
	SignalAllocatableMemoryAvailable: {v1.ResourceMemory, v1.NodeMemoryPressure},
	SignalNodeFsAvailable:            {v1.ResourceEphemeralStorage, v1.NodeDiskPressure},
	SignalNodeFsInodesFree:           {resourceInodes, v1.NodeDiskPressure},
	SignalImageFsAvailable:           {v1.ResourceEphemeralStorage, v1.NodeDiskPressure},
	SignalImageFsInodesFree:          {resourceInodes, v1.NodeDiskPressure},
	SignalPIDAvailable:               {resourcePIDs, v1.NodePIDPressure},
}

// ignoredSignals are accepted in a configuration and dropped: the kubelet
// overrides them with the nodefs or imagefs thresholds (split container
// filesystems are not supported here).
var ignoredSignals = map[Signal]bool{
	"containerfs.available":  true,
	"containerfs.inodesFree": true,
}

// knownSignals lists the signal names, sorted, for error messages.
func knownSignals() []string {
	names := make([]string, 0, len(signals))
	for s := range signals {
		names = append(names, string(s))
	}
	slices.Sort(names)
	return names
}

func isMemorySignal(s Signal) bool {
	return s == SignalMemoryAvailable || s == SignalAllocatableMemoryAvailable
}

// ThresholdValue is an absolute quantity or a fraction of the resource's
// capacity. Quantity wins when set.
type ThresholdValue struct {
	Quantity *resource.Quantity
	// Percentage is a fraction of capacity, between 0 and 1 ("10%" is 0.1).
	Percentage float64
}

// quantity resolves the value against capacity.
func (v ThresholdValue) quantity(capacity *resource.Quantity) *resource.Quantity {
	if v.Quantity != nil {
		q := v.Quantity.DeepCopy()
		return &q
	}
	return resource.NewQuantity(int64(float64(capacity.Value())*v.Percentage), resource.BinarySI)
}

// String gives the value as written in a configuration: "100Mi" or "10%".
func (v ThresholdValue) String() string {
	if v.Quantity != nil {
		return v.Quantity.String()
	}
	return strconv.FormatFloat(v.Percentage*100, 'f', -1, 64) + "%"
}

// Threshold is one eviction threshold: Signal below Value. A threshold with no
// GracePeriod is hard (acted upon at once, pods get HardEvictionGracePeriodSeconds
// to stop); a soft one must hold for GracePeriod first.
type Threshold struct {
	Signal Signal
	Value  ThresholdValue
	// GracePeriod is how long the threshold must be met before evicting; zero
	// for a hard threshold.
	GracePeriod time.Duration
	// MinReclaim, when set, keeps the threshold active after it was met until
	// the signal is back above Value plus MinReclaim.
	MinReclaim *ThresholdValue
}

func (t Threshold) hard() bool { return t.GracePeriod == 0 }

// String describes the threshold, e.g. "memory.available<100Mi" or
// "nodefs.available<10% for 1m30s (min reclaim 1Gi)".
func (t Threshold) String() string {
	s := fmt.Sprintf("%s<%s", t.Signal, t.Value)
	if !t.hard() {
		s += " for " + t.GracePeriod.String()
	}
	if t.MinReclaim != nil {
		s += " (min reclaim " + t.MinReclaim.String() + ")"
	}
	return s
}

// validate checks a threshold built by hand (ParseConfig's are valid).
func (t Threshold) validate() error {
	if _, ok := signals[t.Signal]; !ok {
		return fmt.Errorf("unknown eviction signal %q", t.Signal)
	}
	if err := t.Value.validate(); err != nil {
		return fmt.Errorf("value: %w", err)
	}
	if t.Value.Quantity == nil && t.Value.Percentage == 0 {
		return fmt.Errorf("value: zero threshold")
	}
	if t.GracePeriod < 0 {
		return fmt.Errorf("negative grace period %v", t.GracePeriod)
	}
	if t.MinReclaim != nil {
		if err := t.MinReclaim.validate(); err != nil {
			return fmt.Errorf("min reclaim: %w", err)
		}
	}
	return nil
}

func (v ThresholdValue) validate() error {
	if v.Quantity != nil {
		if v.Quantity.Sign() < 0 {
			return fmt.Errorf("negative quantity %s", v.Quantity)
		}
		return nil
	}
	if v.Percentage < 0 || v.Percentage > 1 {
		return fmt.Errorf("percentage %s out of [0%%, 100%%]", v)
	}
	return nil
}
