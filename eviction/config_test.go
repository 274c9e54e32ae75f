package eviction

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

func thresholdStrings(ths []Threshold) []string {
	var out []string
	for _, t := range ths {
		out = append(out, t.String())
	}
	return out
}

func TestParseConfig(t *testing.T) {
	defaults := []string{
		"imagefs.available<15%", "imagefs.inodesFree<5%", "memory.available<100Mi",
		"nodefs.available<10%", "nodefs.inodesFree<5%", "allocatableMemory.available<100Mi",
	}
	tests := []struct {
		name string
		cfg  *kubeletconfigv1beta1.KubeletConfiguration
		want []string
	}{
		{name: "nil config: kubelet defaults", cfg: nil, want: defaults},
		{name: "empty config: kubelet defaults", cfg: &kubeletconfigv1beta1.KubeletConfiguration{}, want: defaults},
		{
			name: "evictionHard replaces the defaults",
			cfg:  &kubeletconfigv1beta1.KubeletConfiguration{EvictionHard: map[string]string{"memory.available": "500Mi"}},
			want: []string{"memory.available<500Mi", "allocatableMemory.available<500Mi"},
		},
		{
			name: "mergeDefaultEvictionSettings keeps the other defaults",
			cfg: &kubeletconfigv1beta1.KubeletConfiguration{
				EvictionHard:                 map[string]string{"memory.available": "500Mi", "pid.available": "10%"},
				MergeDefaultEvictionSettings: ptr(true),
			},
			want: []string{
				"imagefs.available<15%", "imagefs.inodesFree<5%", "memory.available<500Mi",
				"nodefs.available<10%", "nodefs.inodesFree<5%", "pid.available<10%", "allocatableMemory.available<500Mi",
			},
		},
		{
			name: "empty evictionHard: no hard threshold",
			cfg:  &kubeletconfigv1beta1.KubeletConfiguration{EvictionHard: map[string]string{}},
			want: nil,
		},
		{
			name: "0% and 100% disable a signal",
			cfg: &kubeletconfigv1beta1.KubeletConfiguration{
				EvictionHard: map[string]string{"memory.available": "1Gi", "nodefs.available": "0%", "imagefs.available": "100%"},
			},
			want: []string{"memory.available<1Gi", "allocatableMemory.available<1Gi"},
		},
		{
			name: "no allocatable threshold without pods in enforceNodeAllocatable",
			cfg: &kubeletconfigv1beta1.KubeletConfiguration{
				EvictionHard:           map[string]string{"memory.available": "1Gi"},
				EnforceNodeAllocatable: []string{"system-reserved"},
			},
			want: []string{"memory.available<1Gi"},
		},
		{
			name: "soft thresholds with grace periods and minimum reclaims",
			cfg: &kubeletconfigv1beta1.KubeletConfiguration{
				EvictionHard:            map[string]string{"memory.available": "100Mi", "nodefs.available": "10%"},
				EvictionSoft:            map[string]string{"memory.available": "1Gi", "nodefs.inodesFree": "12.5%"},
				EvictionSoftGracePeriod: map[string]string{"memory.available": "1m30s", "nodefs.inodesFree": "2m"},
				EvictionMinimumReclaim:  map[string]string{"memory.available": "200Mi", "nodefs.available": "5%"},
				EnforceNodeAllocatable:  []string{},
			},
			want: []string{
				"memory.available<100Mi (min reclaim 200Mi)", "nodefs.available<10% (min reclaim 5%)",
				"memory.available<1Gi for 1m30s (min reclaim 200Mi)", "nodefs.inodesFree<12.5% for 2m0s",
			},
		},
		{
			name: "containerfs signals are ignored",
			cfg: &kubeletconfigv1beta1.KubeletConfiguration{
				EvictionHard:           map[string]string{"containerfs.available": "10%", "pid.available": "5%"},
				EvictionSoft:           map[string]string{"containerfs.inodesFree": "10%"},
				EnforceNodeAllocatable: []string{},
			},
			want: []string{"pid.available<5%"},
		},
		{
			name: "allocatable threshold configured explicitly is not doubled",
			cfg: &kubeletconfigv1beta1.KubeletConfiguration{
				EvictionHard: map[string]string{"memory.available": "100Mi", "allocatableMemory.available": "300Mi"},
			},
			want: []string{"allocatableMemory.available<300Mi", "memory.available<100Mi"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := thresholdStrings(cfg.Thresholds); strings.Join(got, " | ") != strings.Join(tt.want, " | ") {
				t.Errorf("thresholds:\n got %q\nwant %q", got, tt.want)
			}
			if cfg.PressureTransitionPeriod != DefaultPressureTransitionPeriod {
				t.Errorf("PressureTransitionPeriod = %v, want the default", cfg.PressureTransitionPeriod)
			}
		})
	}
}

func TestParseConfigValues(t *testing.T) {
	cfg, err := ParseConfig(&kubeletconfigv1beta1.KubeletConfiguration{
		EvictionHard:                     map[string]string{"nodefs.available": "10%", "memory.available": "100Mi"},
		EvictionPressureTransitionPeriod: metav1.Duration{Duration: 30 * time.Second},
		EvictionMaxPodGracePeriod:        45,
		EnforceNodeAllocatable:           []string{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PressureTransitionPeriod != 30*time.Second || cfg.MaxPodGracePeriodSeconds != 45 {
		t.Errorf("got transition %v, max grace %d", cfg.PressureTransitionPeriod, cfg.MaxPodGracePeriodSeconds)
	}
	mem, fs := cfg.Thresholds[0], cfg.Thresholds[1]
	if mem.Signal != SignalMemoryAvailable || mem.Value.Quantity.Value() != 100*mi || !mem.hard() {
		t.Errorf("memory threshold = %+v", mem)
	}
	if fs.Signal != SignalNodeFsAvailable || fs.Value.Quantity != nil || fs.Value.Percentage != 0.1 {
		t.Errorf("nodefs threshold = %+v", fs)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  kubeletconfigv1beta1.KubeletConfiguration
		want string
	}{
		{
			name: "invalid quantity",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionHard: map[string]string{"memory.available": "10Zz"}},
			want: `evictionHard["memory.available"]: invalid quantity "10Zz"`,
		},
		{
			name: "unknown signal",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionHard: map[string]string{"memory.free": "1Gi"}},
			want: `evictionHard["memory.free"]: unknown eviction signal (known: allocatableMemory.available, imagefs.available, imagefs.inodesFree, memory.available, nodefs.available, nodefs.inodesFree, pid.available)`,
		},
		{
			name: "unknown signal in soft thresholds",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionSoft: map[string]string{"swap.available": "1Gi"}},
			want: `evictionSoft["swap.available"]: unknown eviction signal`,
		},
		{
			name: "zero quantity",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionHard: map[string]string{"memory.available": "0"}},
			want: `evictionHard["memory.available"]: threshold must be positive, got "0"`,
		},
		{
			name: "negative quantity",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionHard: map[string]string{"memory.available": "-1Gi"}},
			want: `evictionHard["memory.available"]: threshold must be positive, got "-1Gi"`,
		},
		{
			name: "percentage above 100",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionHard: map[string]string{"nodefs.available": "110%"}},
			want: `evictionHard["nodefs.available"]: percentage "110%" must be between 0% and 100%`,
		},
		{
			name: "invalid percentage",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionHard: map[string]string{"nodefs.available": "ten%"}},
			want: `evictionHard["nodefs.available"]: invalid percentage "ten%"`,
		},
		{
			name: "soft threshold without grace period",
			cfg: kubeletconfigv1beta1.KubeletConfiguration{
				EvictionSoft:            map[string]string{"memory.available": "1Gi", "nodefs.available": "15%"},
				EvictionSoftGracePeriod: map[string]string{"nodefs.available": "1m"},
			},
			want: `evictionSoft["memory.available"]: no grace period for it in evictionSoftGracePeriod`,
		},
		{
			name: "invalid grace period",
			cfg: kubeletconfigv1beta1.KubeletConfiguration{
				EvictionSoft:            map[string]string{"memory.available": "1Gi"},
				EvictionSoftGracePeriod: map[string]string{"memory.available": "soon"},
			},
			want: `evictionSoftGracePeriod["memory.available"]: invalid duration "soon"`,
		},
		{
			name: "negative grace period",
			cfg: kubeletconfigv1beta1.KubeletConfiguration{
				EvictionSoft:            map[string]string{"memory.available": "1Gi"},
				EvictionSoftGracePeriod: map[string]string{"memory.available": "-1m"},
			},
			want: `evictionSoftGracePeriod["memory.available"]: grace period must not be negative, got "-1m"`,
		},
		{
			name: "unknown signal in grace periods",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionSoftGracePeriod: map[string]string{"disk.available": "1m"}},
			want: `evictionSoftGracePeriod["disk.available"]: unknown eviction signal`,
		},
		{
			name: "invalid minimum reclaim",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionMinimumReclaim: map[string]string{"imagefs.available": "2Gb?"}},
			want: `evictionMinimumReclaim["imagefs.available"]: invalid quantity "2Gb?"`,
		},
		{
			name: "zero percent minimum reclaim",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionMinimumReclaim: map[string]string{"imagefs.available": "0%"}},
			want: `evictionMinimumReclaim["imagefs.available"]: percentage "0%" must be above 0% and at most 100%`,
		},
		{
			name: "negative minimum reclaim",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionMinimumReclaim: map[string]string{"imagefs.available": "-1Gi"}},
			want: `evictionMinimumReclaim["imagefs.available"]: minimum reclaim must not be negative, got "-1Gi"`,
		},
		{
			name: "negative max pod grace period",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionMaxPodGracePeriod: -1},
			want: `evictionMaxPodGracePeriod: must not be negative, got -1`,
		},
		{
			name: "negative transition period",
			cfg:  kubeletconfigv1beta1.KubeletConfiguration{EvictionPressureTransitionPeriod: metav1.Duration{Duration: -time.Second}},
			want: `evictionPressureTransitionPeriod: must not be negative, got -1s`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(&tt.cfg)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}

func TestNewValidatesOptions(t *testing.T) {
	ok := Options{Summary: &fakeSummary{}, Pods: &fakePods{}, Killer: &fakeKiller{}}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no summary", func(o *Options) { o.Summary = nil }, "eviction: Options.Summary is required"},
		{"no pods", func(o *Options) { o.Pods = nil }, "eviction: Options.Pods is required"},
		{"no killer", func(o *Options) { o.Killer = nil }, "eviction: Options.Killer is required"},
		{"unknown signal", func(o *Options) { o.Thresholds = []Threshold{hardQ("memory.free", "1Gi")} },
			`eviction: Options.Thresholds[0] (memory.free): unknown eviction signal "memory.free"`},
		{"bad percentage", func(o *Options) { o.Thresholds = []Threshold{hardP(SignalNodeFsAvailable, 2)} },
			"eviction: Options.Thresholds[0] (nodefs.available): value: percentage 200% out of [0%, 100%]"},
		{"zero value", func(o *Options) { o.Thresholds = []Threshold{{Signal: SignalPIDAvailable}} },
			"eviction: Options.Thresholds[0] (pid.available): value: zero threshold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			_, err := New(o)
			if err == nil || err.Error() != tt.want {
				t.Errorf("New: %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := New(ok); err != nil {
		t.Errorf("New: %v", err)
	}
}
