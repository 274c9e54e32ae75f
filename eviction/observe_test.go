package eviction

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func TestObserve(t *testing.T) {
	type want struct{ available, capacity int64 }
	tests := []struct {
		name        string
		summary     *statsapi.Summary
		allocatable uint64
		want        map[Signal]want
	}{
		{
			name: "every signal",
			summary: summary(
				nodeMemory(1*gi, 3*gi),
				podsContainer(512*mi, 2*gi),
				nodeFs(10*gi, 100*gi, 5000, 100000),
				imageFs(20*gi, 200*gi, 7000, 200000),
				rlimit(32768, 1000),
			),
			want: map[Signal]want{
				SignalMemoryAvailable:            {1 * gi, 4 * gi},
				SignalAllocatableMemoryAvailable: {512 * mi, 2*gi + 512*mi},
				SignalNodeFsAvailable:            {10 * gi, 100 * gi},
				SignalNodeFsInodesFree:           {5000, 100000},
				SignalImageFsAvailable:           {20 * gi, 200 * gi},
				SignalImageFsInodesFree:          {7000, 200000},
				SignalPIDAvailable:               {31768, 32768},
			},
		},
		{
			name:    "nothing known",
			summary: summary(),
			want:    map[Signal]want{},
		},
		{
			name:        "allocatable from the node's allocatable memory and the pods' working sets",
			summary:     summary(nodeMemory(1*gi, 3*gi), pods(podStat{name: "a", memory: 300 * mi}, podStat{name: "b", memory: 200 * mi})),
			allocatable: 2 * gi,
			want: map[Signal]want{
				SignalMemoryAvailable:            {1 * gi, 4 * gi},
				SignalAllocatableMemoryAvailable: {2*gi - 500*mi, 2 * gi},
			},
		},
		{
			name:        "allocatable below the pods' use goes negative",
			summary:     summary(pods(podStat{name: "a", memory: 3 * gi})),
			allocatable: 2 * gi,
			want: map[Signal]want{
				SignalAllocatableMemoryAvailable: {-1 * gi, 2 * gi},
			},
		},
		{
			name: "incomplete stats are not observed",
			summary: func() *statsapi.Summary {
				s := summary()
				s.Node.Memory = &statsapi.MemoryStats{AvailableBytes: ptr[uint64](1)}
				s.Node.Fs = &statsapi.FsStats{AvailableBytes: ptr[uint64](1)}
				s.Node.Rlimit = &statsapi.RlimitStats{MaxPID: ptr[int64](10)}
				return s
			}(),
			want: map[Signal]want{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := observe(tt.summary, tt.allocatable)
			if len(obs) != len(tt.want) {
				t.Errorf("observed %d signals, want %d", len(obs), len(tt.want))
			}
			for sig, w := range tt.want {
				o, ok := obs[sig]
				if !ok {
					t.Errorf("%s not observed", sig)
					continue
				}
				if o.available.Value() != w.available || o.capacity.Value() != w.capacity {
					t.Errorf("%s: available %d capacity %d, want %d and %d", sig, o.available.Value(), o.capacity.Value(), w.available, w.capacity)
				}
			}
		})
	}
}

func TestThresholdMet(t *testing.T) {
	obs := observe(summary(nodeMemory(150*mi, 850*mi), nodeFs(9*gi, 100*gi, 100, 1000)), 0)
	withMin := func(th Threshold, v ThresholdValue) Threshold { th.MinReclaim = &v; return th }
	tests := []struct {
		name               string
		threshold          Threshold
		met, metMinReclaim bool
	}{
		{"quantity below", hardQ(SignalMemoryAvailable, "100Mi"), false, false},
		{"quantity equal is not met", hardQ(SignalMemoryAvailable, "150Mi"), false, false},
		{"quantity above", hardQ(SignalMemoryAvailable, "200Mi"), true, true},
		{"min reclaim keeps it met", withMin(hardQ(SignalMemoryAvailable, "100Mi"), ThresholdValue{Quantity: q("100Mi")}), false, true},
		{"percentage met", hardP(SignalNodeFsAvailable, 0.10), true, true},
		{"percentage not met", hardP(SignalNodeFsAvailable, 0.05), false, false},
		{"percentage min reclaim", withMin(hardP(SignalNodeFsAvailable, 0.05), ThresholdValue{Percentage: 0.05}), false, true},
		{"inodes percentage", hardP(SignalNodeFsInodesFree, 0.15), true, true},
		{"unobserved signal", hardQ(SignalPIDAvailable, "100"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := met(tt.threshold, obs, false); got != tt.met {
				t.Errorf("met = %v, want %v", got, tt.met)
			}
			if got, _ := met(tt.threshold, obs, true); got != tt.metMinReclaim {
				t.Errorf("met with min reclaim = %v, want %v", got, tt.metMinReclaim)
			}
		})
	}
}

func TestStatsUpdated(t *testing.T) {
	at := func(ts time.Time) observations {
		s := summary(nodeMemory(1, 1))
		s.Node.Memory.Time = metav1.NewTime(ts)
		return observe(s, 0)
	}
	tests := []struct {
		name      string
		obs, last observations
		want      bool
	}{
		{"first observation", at(t0), observations{}, true},
		{"newer", at(t0.Add(time.Second)), at(t0), true},
		{"same time", at(t0), at(t0), false},
		{"no time", at(time.Time{}), at(t0), true},
		{"not observed", observations{}, at(t0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statsUpdated(SignalMemoryAvailable, tt.obs, tt.last); got != tt.want {
				t.Errorf("statsUpdated = %v, want %v", got, tt.want)
			}
		})
	}
}
