package eviction

import (
	"fmt"
	"log/slog"
	"sync"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// MemoryNotifierOptions configures NewMemoryNotifier.
type MemoryNotifierOptions struct {
	// Threshold is a memory.available or allocatableMemory.available
	// threshold (required).
	Threshold Threshold
	// CgroupDir is the cgroup to watch: for memory.available the root of the
	// memory hierarchy (/sys/fs/cgroup/memory with cgroup v1, /sys/fs/cgroup
	// with v2), for allocatableMemory.available the pods' cgroup (required).
	CgroupDir string
	// Logger receives the notifier's logs (default slog.Default()).
	Logger *slog.Logger
}

// MemoryNotifier is a ThresholdNotifier for a memory threshold: the kernel
// wakes it when the cgroup's memory use crosses the threshold, so the manager
// does not wait for its next pass while memory runs out. Only Linux has one;
// NewMemoryNotifier fails elsewhere.
//
// With cgroup v1 it is the kubelet's memcg notifier: an eventfd registered in
// cgroup.event_control on memory.usage_in_bytes, which the kernel signals when
// usage crosses a value. UpdateThreshold computes that value from the Summary
// as the kubelet does: capacity − threshold + inactive file pages (usage counts
// the page cache the working set leaves out), and Run re-registers the eventfd
// when it changes.
//
// cgroup v2 has no usage thresholds (the kubelet then disables its notifier).
// Here Run instead registers a PSI trigger on the cgroup's memory.pressure
// (/proc/pressure/memory when the root has none): it fires when tasks stalled
// on memory for 200 ms within a 2 s window; and it watches memory.events when
// the cgroup has one (the root has not), which changes when the cgroup hits
// memory.high or memory.max or sees an OOM kill. Either wakes the manager,
// whose pass then compares the signals with the thresholds; UpdateThreshold
// only checks the stats.
type MemoryNotifier struct {
	threshold Threshold
	dir       string
	log       *slog.Logger
	v2        bool
	pressure  string // cgroup v2: the PSI file to put the trigger on

	mu   sync.Mutex
	want int64  // cgroup v1: the usage to be notified at, 0 before UpdateThreshold
	wake func() // set while Run runs: interrupts its wait

	// armed, set by tests, is called when Run armed the kernel notification.
	armed func()
}

// NewMemoryNotifier returns a notifier for a memory threshold; it checks that
// the cgroup has what it needs (see MemoryNotifier).
func NewMemoryNotifier(o MemoryNotifierOptions) (*MemoryNotifier, error) {
	if !isMemorySignal(o.Threshold.Signal) {
		return nil, fmt.Errorf("eviction: memory notifier: threshold signal %q is not %s or %s", o.Threshold.Signal, SignalMemoryAvailable, SignalAllocatableMemoryAvailable)
	}
	if err := o.Threshold.validate(); err != nil {
		return nil, fmt.Errorf("eviction: memory notifier: threshold %s: %w", o.Threshold, err)
	}
	if o.CgroupDir == "" {
		return nil, fmt.Errorf("eviction: memory notifier: no cgroup directory")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	n := &MemoryNotifier{threshold: o.Threshold, dir: o.CgroupDir}
	n.log = o.Logger.With("notifier", n.String())
	if err := n.probe(); err != nil {
		return nil, fmt.Errorf("eviction: memory notifier for %s: %w", o.CgroupDir, err)
	}
	return n, nil
}

// String describes the notifier as the kubelet does: "hard memory eviction
// threshold", "soft allocatable memory eviction threshold".
func (n *MemoryNotifier) String() string {
	kind := "soft "
	if n.threshold.hard() {
		kind = "hard "
	}
	if n.threshold.Signal == SignalAllocatableMemoryAvailable {
		kind += "allocatable "
	}
	return kind + "memory eviction threshold"
}

// UpdateThreshold computes the usage to be notified at from fresh stats and
// has Run re-arm the kernel notification when it changed.
func (n *MemoryNotifier) UpdateThreshold(summary *statsapi.Summary) error {
	v, err := memcgThreshold(n.threshold, summary)
	if err != nil {
		return fmt.Errorf("eviction: %s: %w", n, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.want = v
	if n.wake != nil {
		n.wake()
	}
	return nil
}

// interrupt wakes Run, if it runs.
func (n *MemoryNotifier) interrupt() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.wake != nil {
		n.wake()
	}
}

// memcgThreshold is the memory usage (memory.usage_in_bytes) at which the
// threshold is crossed: the kernel's usage includes inactive file pages the
// working set leaves out, so it is capacity − threshold + (usage − working
// set), capacity being available + working set.
func memcgThreshold(t Threshold, summary *statsapi.Summary) (int64, error) {
	if summary == nil {
		return 0, fmt.Errorf("no stats summary")
	}
	m := summary.Node.Memory
	if t.Signal == SignalAllocatableMemoryAvailable {
		m = nil
		found := false
		for _, c := range summary.Node.SystemContainers {
			if c.Name == statsapi.SystemContainerPods {
				m, found = c.Memory, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("no %q system container in the stats summary", statsapi.SystemContainerPods)
		}
	}
	if m == nil || m.UsageBytes == nil || m.WorkingSetBytes == nil || m.AvailableBytes == nil {
		return 0, fmt.Errorf("incomplete memory stats: usage, working set and available bytes are needed")
	}
	usage, ws, avail := int64(*m.UsageBytes), int64(*m.WorkingSetBytes), int64(*m.AvailableBytes)
	inactiveFile := max(usage-ws, 0)
	capacity := avail + ws
	threshold := t.Value.quantity(bytesQuantity(uint64(capacity))).Value()
	v := capacity - threshold + inactiveFile
	if v <= 0 {
		return 0, fmt.Errorf("threshold %s is not below the memory capacity %d", t.Value, capacity)
	}
	return v, nil
}
