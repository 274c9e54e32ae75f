package qos

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func rl(pairs ...string) v1.ResourceList {
	out := v1.ResourceList{}
	for i := 0; i < len(pairs); i += 2 {
		out[v1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
	}
	return out
}

func ctr(name string, req, lim v1.ResourceList) v1.Container {
	return v1.Container{Name: name, Resources: v1.ResourceRequirements{Requests: req, Limits: lim}}
}

func pod(containers ...v1.Container) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "1234-abcd"}, Spec: v1.PodSpec{Containers: containers}}
}

// Upstream's cases (pkg/apis/core/v1/helper/qos: TestComputePodQOS) and the
// pod-level ones the agent's status and podruntime used to disagree on.
func TestClass(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	withInit := func(p *v1.Pod, c v1.Container) *v1.Pod {
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
		return p
	}
	withPodLevel := func(p *v1.Pod, req, lim v1.ResourceList) *v1.Pod {
		p.Spec.Resources = &v1.ResourceRequirements{Requests: req, Limits: lim}
		return p
	}
	sidecar := ctr("side", nil, nil)
	sidecar.RestartPolicy = &always
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want v1.PodQOSClass
	}{
		{"no resources", pod(ctr("a", nil, nil), ctr("b", nil, nil)), v1.PodQOSBestEffort},
		{"zero requests", pod(ctr("a", rl("cpu", "0", "memory", "0"), nil)), v1.PodQOSBestEffort},
		{"only other resources", pod(ctr("a", rl("nvidia.com/gpu", "1"), rl("nvidia.com/gpu", "1"))), v1.PodQOSBestEffort},
		{"guaranteed", pod(ctr("a", rl("cpu", "100m", "memory", "100Mi"), rl("cpu", "100m", "memory", "100Mi"))), v1.PodQOSGuaranteed},
		{"limits only, not defaulted", pod(ctr("a", nil, rl("cpu", "100m", "memory", "100Mi"))), v1.PodQOSBurstable},
		{"guaranteed two containers", pod(ctr("a", rl("cpu", "100m", "memory", "100Mi"), rl("cpu", "100m", "memory", "100Mi")),
			ctr("b", rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi"))), v1.PodQOSGuaranteed},
		{"one best-effort container", pod(ctr("a", rl("cpu", "100m", "memory", "100Mi"), rl("cpu", "100m", "memory", "100Mi")), ctr("b", nil, nil)), v1.PodQOSBurstable},
		{"requests below limits", pod(ctr("a", rl("cpu", "100m", "memory", "100Mi"), rl("cpu", "200m", "memory", "100Mi"))), v1.PodQOSBurstable},
		{"memory limit only", pod(ctr("a", nil, rl("memory", "100Mi"))), v1.PodQOSBurstable},
		{"cpu request only", pod(ctr("a", rl("cpu", "100m"), nil)), v1.PodQOSBurstable},
		{"init container best effort", withInit(pod(ctr("a", rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi"))), ctr("i", nil, nil)), v1.PodQOSBurstable},
		{"init container guaranteed", withInit(pod(ctr("a", rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi"))),
			ctr("i", rl("cpu", "2", "memory", "2Gi"), rl("cpu", "2", "memory", "2Gi"))), v1.PodQOSGuaranteed},
		{"sidecar best effort", withInit(pod(ctr("a", rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi"))), sidecar), v1.PodQOSBurstable},
		// Pod-level resources decide alone.
		{"pod-level guaranteed, containers without", withPodLevel(pod(ctr("a", nil, nil)), rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi")), v1.PodQOSGuaranteed},
		{"pod-level burstable", withPodLevel(pod(ctr("a", nil, nil)), rl("cpu", "1"), rl("cpu", "2", "memory", "1Gi")), v1.PodQOSBurstable},
		{"pod-level requests only", withPodLevel(pod(ctr("a", rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi"))), rl("memory", "1Gi"), nil), v1.PodQOSBurstable},
		{"pod-level limits only cpu", withPodLevel(pod(ctr("a", nil, nil)), nil, rl("cpu", "1")), v1.PodQOSBurstable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Class(tc.pod); got != tc.want {
				t.Errorf("Class = %s, want %s", got, tc.want)
			}
		})
	}
	p := pod(ctr("a", nil, nil))
	p.Status.QOSClass = v1.PodQOSGuaranteed
	if StatusClass(p) != v1.PodQOSGuaranteed || Class(p) != v1.PodQOSBestEffort {
		t.Errorf("StatusClass keeps the recorded class, Class computes: %s %s", StatusClass(p), Class(p))
	}
}

// Upstream's TestGetContainerOOMScoreAdjust, with a 4 GiB node.
func TestOOMScoreAdj(t *testing.T) {
	const capacity = 4 << 30
	always := v1.ContainerRestartPolicyAlways
	burstable := pod(ctr("a", rl("memory", "1Gi"), rl("memory", "2Gi")))
	tiny := pod(ctr("a", rl("memory", "1"), nil))
	huge := pod(ctr("a", rl("memory", "4Gi"), nil))
	critical := pod(ctr("a", nil, nil))
	critical.Spec.PriorityClassName = "system-node-critical"
	sidecarPod := pod(ctr("a", rl("memory", "2Gi"), nil), ctr("b", rl("memory", "1Gi"), nil))
	side := ctr("side", rl("memory", "10Mi"), nil)
	side.RestartPolicy = &always
	sidecarPod.Spec.InitContainers = []v1.Container{side}
	podLevel := pod(ctr("a", rl("memory", "1Gi"), nil), ctr("b", nil, nil))
	podLevel.Spec.Resources = &v1.ResourceRequirements{Requests: rl("memory", "3Gi")}
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		c    *v1.Container
		want int
	}{
		{"best effort", pod(ctr("a", nil, nil)), nil, 1000},
		{"guaranteed", pod(ctr("a", rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi"))), nil, -997},
		{"node critical", critical, nil, -997},
		{"burstable 1Gi of 4Gi", burstable, nil, 750},
		{"burstable tiny request", tiny, nil, 999},
		{"burstable request = capacity", huge, nil, 3},
		{"sidecar capped by the smallest regular container", sidecarPod, &sidecarPod.Spec.InitContainers[0], 750},
		{"regular container of that pod", sidecarPod, &sidecarPod.Spec.Containers[0], 500},
		{"pod-level: 1Gi + 1Gi unclaimed share", podLevel, nil, 500},
		{"pod-level: 0 + 1Gi unclaimed share", podLevel, &podLevel.Spec.Containers[1], 750},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			if c == nil {
				c = &tc.pod.Spec.Containers[0]
			}
			if got := OOMScoreAdj(tc.pod, c, capacity); got != tc.want {
				t.Errorf("OOMScoreAdj = %d, want %d", got, tc.want)
			}
		})
	}
}

func u64(v uint64) *uint64 { return &v }
func i64(v int64) *int64   { return &v }

func TestPodResources(t *testing.T) {
	guaranteed := pod(ctr("a", rl("cpu", "500m", "memory", "100Mi"), rl("cpu", "500m", "memory", "100Mi")))
	burstableAll := pod(ctr("a", rl("cpu", "100m", "memory", "50Mi"), rl("cpu", "200m", "memory", "100Mi")),
		ctr("b", rl("cpu", "100m"), rl("cpu", "300m", "memory", "100Mi")))
	burstablePartial := pod(ctr("a", rl("cpu", "100m"), rl("cpu", "200m")), ctr("b", rl("memory", "10Mi"), nil))
	overhead := pod(ctr("a", rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi")))
	overhead.Spec.Overhead = rl("cpu", "250m", "memory", "120Mi")
	podLevel := pod(ctr("a", nil, nil))
	podLevel.Spec.Resources = &v1.ResourceRequirements{Requests: rl("cpu", "1"), Limits: rl("cpu", "2", "memory", "1Gi")}
	withInit := pod(ctr("a", rl("cpu", "100m"), nil))
	withInit.Spec.InitContainers = []v1.Container{ctr("i", rl("cpu", "2"), nil)}

	on := PodOptions{CPUCFSQuota: true, PodPidsLimit: 1024}
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		opts PodOptions
		want Resources
	}{
		{"best effort", pod(ctr("a", nil, nil)), on, Resources{CPUShares: u64(2), PidsLimit: i64(1024)}},
		{"guaranteed", guaranteed, on, Resources{CPUShares: u64(512), CPUQuota: i64(50000), CPUPeriod: u64(100000), Memory: i64(100 << 20), PidsLimit: i64(1024)}},
		{"guaranteed, quota off", guaranteed, PodOptions{}, Resources{CPUShares: u64(512), CPUQuota: i64(-1), CPUPeriod: u64(100000), Memory: i64(100 << 20)}},
		{"guaranteed, 10ms period", guaranteed, PodOptions{CPUCFSQuota: true, CPUCFSQuotaPeriod: 10 * time.Millisecond},
			Resources{CPUShares: u64(512), CPUQuota: i64(5000), CPUPeriod: u64(10000), Memory: i64(100 << 20)}},
		{"burstable, every container limited", burstableAll, on, Resources{CPUShares: u64(204), CPUQuota: i64(50000), CPUPeriod: u64(100000), Memory: i64(200 << 20), PidsLimit: i64(1024)}},
		{"burstable, some unlimited", burstablePartial, on, Resources{CPUShares: u64(102), PidsLimit: i64(1024)}},
		{"overhead counts", overhead, PodOptions{CPUCFSQuota: true}, Resources{CPUShares: u64(1280), CPUQuota: i64(125000), CPUPeriod: u64(100000), Memory: i64(1<<30 + 120<<20)}},
		{"pod-level resources", podLevel, PodOptions{CPUCFSQuota: true}, Resources{CPUShares: u64(1024), CPUQuota: i64(200000), CPUPeriod: u64(100000), Memory: i64(1 << 30)}},
		{"init container's larger request", withInit, PodOptions{}, Resources{CPUShares: u64(2048)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PodResources(tc.pod, tc.opts)
			if s := diffResources(got, tc.want); s != "" {
				t.Error(s)
			}
		})
	}
}

func diffResources(got, want Resources) string {
	var out string
	cmpU := func(n string, a, b *uint64) {
		if (a == nil) != (b == nil) || (a != nil && *a != *b) {
			out += n + ": got " + fmtU(a) + ", want " + fmtU(b) + "; "
		}
	}
	cmpI := func(n string, a, b *int64) {
		if (a == nil) != (b == nil) || (a != nil && *a != *b) {
			out += n + ": got " + fmtI(a) + ", want " + fmtI(b) + "; "
		}
	}
	cmpU("cpu shares", got.CPUShares, want.CPUShares)
	cmpI("cpu quota", got.CPUQuota, want.CPUQuota)
	cmpU("cpu period", got.CPUPeriod, want.CPUPeriod)
	cmpI("memory", got.Memory, want.Memory)
	cmpI("pids", got.PidsLimit, want.PidsLimit)
	return out
}

func fmtU(p *uint64) string {
	if p == nil {
		return "unset"
	}
	return resource.NewQuantity(int64(*p), resource.DecimalSI).String()
}

func fmtI(p *int64) string {
	if p == nil {
		return "unset"
	}
	return resource.NewQuantity(*p, resource.DecimalSI).String()
}

func TestCPUConversions(t *testing.T) {
	for _, tc := range []struct {
		milli  int64
		shares uint64
		quota  int64
	}{
		{0, 2, 0}, {1, 2, 1000}, {5, 5 * 1024 / 1000, 1000}, {10, 10, 1000}, {100, 102, 10000},
		{1000, 1024, 100000}, {2500, 2560, 250000}, {300000, 262144, 30000000},
	} {
		if got := MilliCPUToShares(tc.milli); got != tc.shares {
			t.Errorf("MilliCPUToShares(%d) = %d, want %d", tc.milli, got, tc.shares)
		}
		if got := MilliCPUToQuota(tc.milli, DefaultCPUPeriod); got != tc.quota {
			t.Errorf("MilliCPUToQuota(%d) = %d, want %d", tc.milli, got, tc.quota)
		}
	}
	for shares, weight := range map[uint64]uint64{2: 1, 1024: 39, 262144: 10000, 1: 1, 500000: 10000} {
		if got := SharesToWeight(shares); got != weight {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, weight)
		}
	}
}

func TestAllocatable(t *testing.T) {
	capacity := rl("cpu", "4", "memory", "16Gi", "ephemeral-storage", "100Gi", "pods", "110")
	got := Allocatable(capacity, rl("cpu", "500m", "memory", "1Gi"), rl("cpu", "500m", "memory", "512Mi"),
		rl("memory", "100Mi", "ephemeral-storage", "10Gi"))
	want := rl("cpu", "3", "memory", "14748Mi", "ephemeral-storage", "90Gi", "pods", "110")
	for name, q := range want {
		if g := got[name]; g.Cmp(q) != 0 {
			t.Errorf("allocatable %s = %s, want %s", name, g.String(), q.String())
		}
	}
	if len(got) != len(want) {
		t.Errorf("allocatable has %d resources, want %d: %v", len(got), len(want), got)
	}
	// More reserved than there is: zero, not negative.
	if got := Allocatable(rl("cpu", "1"), rl("cpu", "2"), nil, nil); !got.Cpu().IsZero() {
		t.Errorf("over-reserved cpu = %s, want 0", got.Cpu())
	}
	enforced := EnforcedAllocatable(capacity, rl("memory", "1Gi"), rl("memory", "1Gi"))
	if q := enforced[v1.ResourceMemory]; q.Cmp(resource.MustParse("14Gi")) != 0 {
		t.Errorf("enforced memory = %s, want 14Gi (eviction threshold not subtracted)", q.String())
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		root, driver string
		class        v1.PodQOSClass
		path, parent string
	}{
		{"/", DriverCgroupfs, v1.PodQOSGuaranteed, "/kubepods/pod1234-abcd", "/kubepods/pod1234-abcd"},
		{"/", DriverCgroupfs, v1.PodQOSBurstable, "/kubepods/burstable/pod1234-abcd", "/kubepods/burstable/pod1234-abcd"},
		{"/test-root", DriverCgroupfs, v1.PodQOSBestEffort, "/test-root/kubepods/besteffort/pod1234-abcd", "/test-root/kubepods/besteffort/pod1234-abcd"},
		{"/", DriverSystemd, v1.PodQOSGuaranteed, "/kubepods.slice/kubepods-pod1234_abcd.slice", "kubepods-pod1234_abcd.slice"},
		{"/", DriverSystemd, v1.PodQOSBurstable, "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_abcd.slice", "kubepods-burstable-pod1234_abcd.slice"},
		{"/", DriverSystemd, v1.PodQOSBestEffort, "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234_abcd.slice", "kubepods-besteffort-pod1234_abcd.slice"},
	} {
		m := &manager{opts: Options{Driver: tc.driver}, kubepod: rootName(tc.root).child("kubepods")}
		p := pod(ctr("a", nil, nil))
		switch tc.class {
		case v1.PodQOSGuaranteed:
			p = pod(ctr("a", rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi")))
		case v1.PodQOSBurstable:
			p = pod(ctr("a", rl("cpu", "1"), nil))
		}
		if got := m.path(m.podCgroup(p)); got != tc.path {
			t.Errorf("%s %s %s: path %q, want %q", tc.root, tc.driver, tc.class, got, tc.path)
		}
		if got := m.CgroupParent(p); got != tc.parent {
			t.Errorf("%s %s %s: parent %q, want %q", tc.root, tc.driver, tc.class, got, tc.parent)
		}
	}
}
