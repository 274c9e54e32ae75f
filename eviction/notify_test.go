package eviction

import (
	"strings"
	"testing"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func memStats(usage, workingSet, available uint64) *statsapi.MemoryStats {
	return &statsapi.MemoryStats{UsageBytes: ptr(usage), WorkingSetBytes: ptr(workingSet), AvailableBytes: ptr(available)}
}

func TestMemcgThreshold(t *testing.T) {
	withNode := func(m *statsapi.MemoryStats) *statsapi.Summary {
		return &statsapi.Summary{Node: statsapi.NodeStats{Memory: m}}
	}
	withPods := func(m *statsapi.MemoryStats) *statsapi.Summary {
		return &statsapi.Summary{Node: statsapi.NodeStats{
			Memory:           memStats(1, 1, 1),
			SystemContainers: []statsapi.ContainerStats{{Name: "kubelet"}, {Name: "pods", Memory: m}},
		}}
	}
	tests := []struct {
		name      string
		threshold Threshold
		summary   *statsapi.Summary
		want      int64
		err       string
	}{
		{
			// capacity 8Gi (6Gi available + 2Gi working set); usage 3Gi, so
			// 1Gi of inactive file pages: 8Gi - 100Mi + 1Gi.
			name:      "quantity",
			threshold: hardQ(SignalMemoryAvailable, "100Mi"),
			summary:   withNode(memStats(3*gi, 2*gi, 6*gi)),
			want:      9*gi - 100*mi,
		},
		{
			name:      "percentage of capacity",
			threshold: hardP(SignalMemoryAvailable, 0.25),
			summary:   withNode(memStats(2*gi, 2*gi, 6*gi)),
			want:      6 * gi,
		},
		{
			name:      "allocatable: the pods cgroup",
			threshold: hardQ(SignalAllocatableMemoryAvailable, "1Gi"),
			summary:   withPods(memStats(3*gi, 3*gi, 1*gi)),
			want:      3 * gi,
		},
		{
			name:      "allocatable without a pods cgroup",
			threshold: hardQ(SignalAllocatableMemoryAvailable, "1Gi"),
			summary:   withNode(memStats(3*gi, 3*gi, 1*gi)),
			err:       `no "pods" system container in the stats summary`,
		},
		{
			name:      "incomplete stats",
			threshold: hardQ(SignalMemoryAvailable, "100Mi"),
			summary:   withNode(&statsapi.MemoryStats{WorkingSetBytes: ptr[uint64](1)}),
			err:       "incomplete memory stats",
		},
		{
			name:      "no memory stats",
			threshold: hardQ(SignalMemoryAvailable, "100Mi"),
			summary:   withNode(nil),
			err:       "incomplete memory stats",
		},
		{
			name:      "threshold above capacity",
			threshold: hardQ(SignalMemoryAvailable, "16Gi"),
			summary:   withNode(memStats(2*gi, 2*gi, 6*gi)),
			err:       "threshold 16Gi is not below the memory capacity 8589934592",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := memcgThreshold(tt.threshold, tt.summary)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestMemoryNotifierOptions(t *testing.T) {
	tests := []struct {
		name string
		o    MemoryNotifierOptions
		err  string
	}{
		{"not a memory signal", MemoryNotifierOptions{Threshold: hardP(SignalNodeFsAvailable, 0.1), CgroupDir: "/sys/fs/cgroup"},
			`eviction: memory notifier: threshold signal "nodefs.available" is not memory.available or allocatableMemory.available`},
		{"no cgroup dir", MemoryNotifierOptions{Threshold: hardQ(SignalMemoryAvailable, "100Mi")},
			"eviction: memory notifier: no cgroup directory"},
		{"not a cgroup", MemoryNotifierOptions{Threshold: hardQ(SignalMemoryAvailable, "100Mi"), CgroupDir: t.TempDir()},
			"eviction: memory notifier for "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMemoryNotifier(tt.o)
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("err = %v, want %q...", err, tt.err)
			}
		})
	}
}

func TestMemoryNotifierUpdateThreshold(t *testing.T) {
	n := &MemoryNotifier{threshold: hardQ(SignalMemoryAvailable, "100Mi"), log: discard()}
	woken := 0
	n.wake = func() { woken++ }
	if err := n.UpdateThreshold(&statsapi.Summary{Node: statsapi.NodeStats{Memory: memStats(2*gi, 2*gi, 6*gi)}}); err != nil {
		t.Fatal(err)
	}
	if n.want != 8*gi-100*mi || woken != 1 {
		t.Errorf("want %d, woken %d", n.want, woken)
	}
	err := n.UpdateThreshold(&statsapi.Summary{})
	if err == nil || err.Error() != "eviction: hard memory eviction threshold: incomplete memory stats: usage, working set and available bytes are needed" {
		t.Errorf("err = %v", err)
	}
	if n.want != 8*gi-100*mi {
		t.Error("a failed update changed the threshold")
	}
}

func TestMemoryNotifierString(t *testing.T) {
	for _, tt := range []struct {
		t    Threshold
		want string
	}{
		{hardQ(SignalMemoryAvailable, "1Gi"), "hard memory eviction threshold"},
		{soft(SignalMemoryAvailable, "1Gi", time.Minute), "soft memory eviction threshold"},
		{hardQ(SignalAllocatableMemoryAvailable, "1Gi"), "hard allocatable memory eviction threshold"},
	} {
		if got := (&MemoryNotifier{threshold: tt.t}).String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
