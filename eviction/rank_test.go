package eviction

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func names(ps []*v1.Pod) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// rank ranks pods (given in the order listed) for sig and returns their names.
func rank(sig Signal, dedicatedImageFs bool, s podStatsFunc, ps ...*v1.Pod) []string {
	ps = slices.Clone(ps)
	rankFuncs(dedicatedImageFs)[sig](ps, s)
	return names(ps)
}

func TestRankMemoryPressure(t *testing.T) {
	stats := podStatsByUID(summary(pods(
		podStat{name: "exceeds-high-priority", memory: 200 * mi},
		podStat{name: "below-request", memory: 500 * mi},
		podStat{name: "below-request-low-priority", memory: 10 * mi},
		podStat{name: "best-effort", memory: 50 * mi},
		podStat{name: "exceeds-most", memory: 400 * mi},
	)))
	all := []*v1.Pod{
		pod("below-request", memRequest("1Gi")),
		pod("exceeds-high-priority", memRequest("100Mi"), priority(100)),
		pod("no-stats", priority(1000)),
		pod("best-effort"),
		pod("below-request-low-priority", memRequest("1Gi"), priority(-5)),
		pod("exceeds-most", memRequest("100Mi")),
	}
	want := []string{
		"no-stats",                   // no stats: first, whatever its priority
		"exceeds-most",               // above request by 300Mi
		"best-effort",                // above request (none) by 50Mi
		"exceeds-high-priority",      // exceeds, but higher priority
		"below-request-low-priority", // within requests: by priority
		"below-request",
	}
	for _, sig := range []Signal{SignalMemoryAvailable, SignalAllocatableMemoryAvailable} {
		if got := rank(sig, false, stats, all...); !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", sig, got, want)
		}
	}
}

func TestRankMemoryPressureRequestsIncludeInitAndOverhead(t *testing.T) {
	// A pod's request is its effective request: the largest init container
	// request counts when above the containers' sum, and so does overhead.
	stats := podStatsByUID(summary(pods(
		podStat{name: "init", memory: 300 * mi},
		podStat{name: "overhead", memory: 300 * mi},
		podStat{name: "plain", memory: 300 * mi},
	)))
	initPod := pod("init", memRequest("100Mi"), func(p *v1.Pod) {
		p.Spec.InitContainers = []v1.Container{{Name: "i", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("250Mi")}}}}
	})
	overheadPod := pod("overhead", memRequest("100Mi"), func(p *v1.Pod) {
		p.Spec.Overhead = v1.ResourceList{v1.ResourceMemory: resource.MustParse("100Mi")}
	})
	plain := pod("plain", memRequest("100Mi"))
	want := []string{"plain", "overhead", "init"} // above by 200Mi, 100Mi, 50Mi
	if got := rank(SignalMemoryAvailable, false, stats, initPod, overheadPod, plain); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRankPIDPressure(t *testing.T) {
	stats := podStatsByUID(summary(pods(
		podStat{name: "few", procs: 10},
		podStat{name: "many", procs: 100},
		podStat{name: "low-priority", procs: 1},
	)))
	got := rank(SignalPIDAvailable, false, stats,
		pod("few"), pod("many"), pod("no-stats"), pod("low-priority", priority(-1)))
	want := []string{"low-priority", "no-stats", "many", "few"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRankDiskPressure(t *testing.T) {
	stats := podStatsByUID(summary(pods(
		podStat{name: "within-request", rootfs: 100 * mi, logs: 100 * mi, inodes: 1000, volumes: map[string]uint64{"scratch": 300 * mi}},
		podStat{name: "rootfs-only", rootfs: 50 * mi, inodes: 10},
		podStat{name: "volume-heavy", rootfs: 10 * mi, logs: 10 * mi, inodes: 100, volumes: map[string]uint64{"host": 500 * mi, "tmpfs": 5 * gi}},
		podStat{name: "low-priority", rootfs: 1 * mi, inodes: 5},
	)))
	ps := []*v1.Pod{
		pod("within-request", requests(v1.ResourceList{v1.ResourceEphemeralStorage: resource.MustParse("1Gi")}),
			volume("scratch", v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}})),
		pod("rootfs-only"),
		pod("volume-heavy",
			volume("host", v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/data"}}),
			// memory-backed emptyDir: not on disk, not counted
			volume("tmpfs", v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}})),
		pod("low-priority", priority(-1)),
	}
	tests := []struct {
		name      string
		signal    Signal
		dedicated bool
		want      []string
	}{
		// One filesystem: writable layers, logs and local volumes all count.
		{"nodefs bytes", SignalNodeFsAvailable, false, []string{"low-priority", "volume-heavy", "rootfs-only", "within-request"}},
		{"imagefs bytes on the nodefs", SignalImageFsAvailable, false, []string{"low-priority", "volume-heavy", "rootfs-only", "within-request"}},
		// Dedicated imagefs: nodefs counts logs and volumes only ...
		{"nodefs bytes, dedicated imagefs", SignalNodeFsAvailable, true, []string{"volume-heavy", "low-priority", "rootfs-only", "within-request"}},
		// ... and the imagefs the writable layers only.
		{"imagefs bytes, dedicated imagefs", SignalImageFsAvailable, true, []string{"low-priority", "rootfs-only", "volume-heavy", "within-request"}},
		// Inodes have no request: every pod using some exceeds it.
		{"nodefs inodes", SignalNodeFsInodesFree, false, []string{"low-priority", "within-request", "volume-heavy", "rootfs-only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rank(tt.signal, tt.dedicated, stats, ps...); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
