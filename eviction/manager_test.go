package eviction

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func setNodeMemory(available uint64) func(*statsapi.Summary) {
	return func(s *statsapi.Summary) { *s.Node.Memory.AvailableBytes = available }
}

func TestHardThresholdEvictsOnePodPerPass(t *testing.T) {
	h := newHarness(t,
		Options{Config: Config{Thresholds: []Threshold{hardQ(SignalMemoryAvailable, "100Mi")}, MaxPodGracePeriodSeconds: 30}},
		summary(nodeMemory(50*mi, 950*mi), pods(
			podStat{name: "small", memory: 100 * mi},
			podStat{name: "big", memory: 600 * mi},
			podStat{name: "medium", memory: 250 * mi},
		)),
		pod("small"), pod("big", grace(60)), pod("medium"),
	)

	if got := h.pass(t); !slices.Equal(got, []string{"big"}) {
		t.Fatalf("pass 1 evicted %q, want [big]", got)
	}
	if e := h.killer.evicted[0]; e.grace != HardEvictionGracePeriodSeconds {
		t.Errorf("hard eviction grace = %d, want %d", e.grace, HardEvictionGracePeriodSeconds)
	}
	if !h.m.IsUnderMemoryPressure() || h.m.IsUnderDiskPressure() || h.m.IsUnderPIDPressure() {
		t.Error("want memory pressure only")
	}

	// Same stats again (no newer observation): no second eviction.
	if got := h.pass(t); got != nil {
		t.Fatalf("pass on stale stats evicted %q", got)
	}

	// Fresh stats still under the threshold: the next pod goes.
	h.step(10 * time.Second)
	if got := h.pass(t); !slices.Equal(got, []string{"medium"}) {
		t.Fatalf("pass 3 evicted %q, want [medium]", got)
	}

	// Memory recovered: nobody else goes, pressure stays for the transition period.
	h.step(10 * time.Second)
	h.summary.update(setNodeMemory(500 * mi))
	if got := h.pass(t); got != nil {
		t.Fatalf("pass 4 evicted %q", got)
	}
	if !h.m.IsUnderMemoryPressure() {
		t.Error("memory pressure ended before the transition period")
	}
	if got := h.killer.names(); !slices.Equal(got, []string{"big", "medium"}) {
		t.Errorf("evicted %q", got)
	}
}

func TestEvictionStatusAndMessage(t *testing.T) {
	p := pod("app", memRequest("100Mi"))
	p.Generation = 3
	p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "sidecar"})
	h := newHarness(t,
		Options{Config: Config{Thresholds: []Threshold{hardQ(SignalMemoryAvailable, "100Mi")}}},
		summary(nodeMemory(50*mi, 950*mi), pods(podStat{name: "app", memory: 600 * mi, containers: []string{"c", "sidecar"}})),
		p,
	)
	h.pass(t)
	if len(h.killer.evicted) != 1 {
		t.Fatalf("evicted %v", h.killer.evicted)
	}
	st := h.killer.evicted[0].status
	wantMsg := "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. " +
		"Container c was using 300Mi, request is 100Mi, has larger consumption of memory. " +
		"Container sidecar was using 300Mi, request is 0, has larger consumption of memory. "
	if st.Phase != v1.PodFailed || st.Reason != "Evicted" || st.Message != wantMsg {
		t.Errorf("status = %s %q %q\nwant message %q", st.Phase, st.Reason, st.Message, wantMsg)
	}
	want := v1.PodCondition{
		Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: v1.PodReasonTerminationByKubelet,
		Message: wantMsg, ObservedGeneration: 3,
	}
	if len(st.Conditions) != 1 || st.Conditions[0] != want {
		t.Errorf("conditions = %+v\nwant %+v", st.Conditions, want)
	}
}

func TestEvictionMessages(t *testing.T) {
	tests := []struct {
		name      string
		threshold Threshold
		summary   *statsapi.Summary
		pod       *v1.Pod
		want      string
	}{
		{
			name:      "disk",
			threshold: hardP(SignalNodeFsAvailable, 0.1),
			summary:   summary(nodeFs(5*gi, 100*gi, 1000, 1000), pods(podStat{name: "p", rootfs: 1 * gi, logs: 1 * gi})),
			pod:       pod("p", requests(v1.ResourceList{v1.ResourceEphemeralStorage: resource.MustParse("1Gi")})),
			want: "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 5Gi. " +
				"Container c was using 2Gi, request is 1Gi, has larger consumption of ephemeral-storage. ",
		},
		{
			name:      "inodes",
			threshold: hardQ(SignalNodeFsInodesFree, "100"),
			summary:   summary(nodeFs(50*gi, 100*gi, 10, 1000), pods(podStat{name: "p", inodes: 500})),
			pod:       pod("p"),
			want:      "The node was low on resource: inodes. Threshold quantity: 100, available: 10. ",
		},
		{
			name:      "pids",
			threshold: hardQ(SignalPIDAvailable, "1000"),
			summary:   summary(rlimit(4096, 4000), pods(podStat{name: "p", procs: 3000})),
			pod:       pod("p"),
			want:      "The node was low on resource: pids. Threshold quantity: 1k, available: 96. ",
		},
		{
			name:      "pod-level memory request",
			threshold: hardQ(SignalMemoryAvailable, "100Mi"),
			summary:   summary(nodeMemory(50*mi, 950*mi), pods(podStat{name: "p", memory: 300 * mi})),
			pod: pod("p", func(p *v1.Pod) {
				p.Spec.Resources = &v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("200Mi")}}
			}),
			want: "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. " +
				"Pod p was using 300Mi, request is 200Mi, has larger consumption of memory. " +
				"Container c was using 300Mi, request is 0, has larger consumption of memory. ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{Config: Config{Thresholds: []Threshold{tt.threshold}}, DisableLocalStorageEviction: true}, tt.summary, tt.pod)
			h.pass(t)
			if len(h.killer.evicted) != 1 {
				t.Fatalf("evicted %v", h.killer.evicted)
			}
			if got := h.killer.evicted[0].status.Message; got != tt.want {
				t.Errorf("message:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSoftThresholdGracePeriod(t *testing.T) {
	tests := []struct {
		name      string
		maxGrace  int64
		podGrace  *int64
		wantGrace int64
	}{
		{"pod grace below the cap", 60, ptr[int64](20), 20},
		{"pod grace above the cap", 60, ptr[int64](120), 60},
		{"no pod grace: the cap", 45, nil, 45},
		{"zero cap", 0, ptr[int64](30), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pod("p")
			p.Spec.TerminationGracePeriodSeconds = tt.podGrace
			h := newHarness(t,
				Options{Config: Config{Thresholds: []Threshold{soft(SignalMemoryAvailable, "1Gi", time.Minute)}, MaxPodGracePeriodSeconds: tt.maxGrace}},
				summary(nodeMemory(500*mi, 3*gi), pods(podStat{name: "p", memory: 2 * gi})),
				p,
			)
			// Met at once: the condition is true, but nobody is evicted
			// until the grace period is over.
			if got := h.pass(t); got != nil {
				t.Fatalf("evicted %q at once", got)
			}
			if !h.m.IsUnderMemoryPressure() {
				t.Error("no memory pressure while a soft threshold is met")
			}
			h.step(59 * time.Second)
			if got := h.pass(t); got != nil {
				t.Fatalf("evicted %q before the grace period", got)
			}
			h.step(time.Second)
			if got := h.pass(t); !slices.Equal(got, []string{"p"}) {
				t.Fatalf("evicted %q after the grace period, want [p]", got)
			}
			if g := h.killer.evicted[0].grace; g != tt.wantGrace {
				t.Errorf("grace = %d, want %d", g, tt.wantGrace)
			}
		})
	}
}

func TestSoftThresholdResetWhenResolved(t *testing.T) {
	h := newHarness(t,
		Options{Config: Config{Thresholds: []Threshold{soft(SignalMemoryAvailable, "1Gi", time.Minute)}}},
		summary(nodeMemory(500*mi, 3*gi), pods(podStat{name: "p", memory: 2 * gi})),
		pod("p"),
	)
	h.pass(t)
	h.step(40 * time.Second)
	h.summary.update(setNodeMemory(2 * gi)) // resolved: the grace period starts over
	h.pass(t)
	h.step(40 * time.Second)
	h.summary.update(setNodeMemory(500 * mi))
	if got := h.pass(t); got != nil {
		t.Fatalf("evicted %q though the threshold was met for 0s", got)
	}
	h.step(time.Minute)
	if got := h.pass(t); !slices.Equal(got, []string{"p"}) {
		t.Fatalf("evicted %q, want [p]", got)
	}
}

func TestMinReclaim(t *testing.T) {
	th := hardQ(SignalMemoryAvailable, "100Mi")
	th.MinReclaim = &ThresholdValue{Quantity: q("100Mi")}
	h := newHarness(t,
		Options{Config: Config{Thresholds: []Threshold{th}}},
		summary(nodeMemory(50*mi, 3*gi), pods(
			podStat{name: "a", memory: 1 * gi}, podStat{name: "b", memory: 512 * mi}, podStat{name: "c", memory: 256 * mi},
		)),
		pod("a"), pod("b"), pod("c"),
	)
	steps := []struct {
		available uint64
		want      []string
	}{
		{50 * mi, []string{"a"}},  // met
		{150 * mi, []string{"b"}}, // above the threshold, below threshold + min reclaim
		{250 * mi, nil},           // reclaimed
		{150 * mi, nil},           // resolved: only the threshold itself counts again
	}
	for i, s := range steps {
		h.summary.update(setNodeMemory(s.available))
		if got := h.pass(t); !slices.Equal(got, s.want) {
			t.Fatalf("pass %d (available %dMi): evicted %q, want %q", i+1, s.available/mi, got, s.want)
		}
		h.step(10 * time.Second)
	}
}

func TestPressureTransitionPeriodAndNodeConditions(t *testing.T) {
	h := newHarness(t,
		Options{Config: Config{Thresholds: []Threshold{hardP(SignalNodeFsAvailable, 0.1)}, PressureTransitionPeriod: time.Minute}},
		summary(nodeFs(50*gi, 100*gi, 1000, 1000), nodeMemory(1*gi, 1*gi)),
	)
	type cond struct {
		status          v1.ConditionStatus
		reason, message string
		transition      time.Time
	}
	check := func(step string, want map[v1.NodeConditionType]cond) {
		t.Helper()
		now := h.clock.Now()
		got := h.m.NodeConditions(now)
		var types []v1.NodeConditionType
		for _, c := range got {
			types = append(types, c.Type)
			w := want[c.Type]
			if c.Status != w.status || c.Reason != w.reason || c.Message != w.message ||
				!c.LastTransitionTime.Time.Equal(w.transition) || !c.LastHeartbeatTime.Time.Equal(now) {
				t.Errorf("%s: %s = %s %q %q transition %v heartbeat %v\nwant %+v", step, c.Type, c.Status, c.Reason, c.Message,
					c.LastTransitionTime.Time, c.LastHeartbeatTime.Time, w)
			}
		}
		if !slices.Equal(types, []v1.NodeConditionType{v1.NodeMemoryPressure, v1.NodeDiskPressure, v1.NodePIDPressure}) {
			t.Errorf("%s: condition types %v", step, types)
		}
	}
	memOK := cond{v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", t0}
	pidOK := cond{v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available", t0}
	noDisk := func(at time.Time) cond {
		return cond{v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", at}
	}
	disk := func(at time.Time) cond {
		return cond{v1.ConditionTrue, "KubeletHasDiskPressure", "kubelet has disk pressure", at}
	}

	h.pass(t)
	check("healthy", map[v1.NodeConditionType]cond{v1.NodeMemoryPressure: memOK, v1.NodeDiskPressure: noDisk(t0), v1.NodePIDPressure: pidOK})

	h.step(10 * time.Second)
	h.summary.update(func(s *statsapi.Summary) { *s.Node.Fs.AvailableBytes = 5 * gi })
	h.pass(t)
	pressureAt := h.clock.Now()
	check("pressure", map[v1.NodeConditionType]cond{v1.NodeMemoryPressure: memOK, v1.NodeDiskPressure: disk(pressureAt), v1.NodePIDPressure: pidOK})

	h.step(10 * time.Second)
	h.summary.update(func(s *statsapi.Summary) { *s.Node.Fs.AvailableBytes = 50 * gi })
	h.pass(t)
	check("resolved, within the transition period", map[v1.NodeConditionType]cond{v1.NodeMemoryPressure: memOK, v1.NodeDiskPressure: disk(pressureAt), v1.NodePIDPressure: pidOK})

	h.step(49 * time.Second) // 59s after the last observation of the pressure
	h.pass(t)
	if !h.m.IsUnderDiskPressure() {
		t.Error("disk pressure ended before the transition period")
	}
	h.step(time.Second)
	h.pass(t)
	if h.m.IsUnderDiskPressure() {
		t.Error("disk pressure still on after the transition period")
	}
	check("after the transition period", map[v1.NodeConditionType]cond{v1.NodeMemoryPressure: memOK, v1.NodeDiskPressure: noDisk(h.clock.Now()), v1.NodePIDPressure: pidOK})
}

func TestPressureConditionsBySignal(t *testing.T) {
	tests := []struct {
		threshold Threshold
		summary   *statsapi.Summary
		want      string // memory, disk, pid
	}{
		{hardQ(SignalMemoryAvailable, "1Gi"), summary(nodeMemory(500*mi, 1*gi)), "memory"},
		{hardQ(SignalAllocatableMemoryAvailable, "1Gi"), summary(podsContainer(500*mi, 1*gi)), "memory"},
		{hardP(SignalNodeFsAvailable, 0.1), summary(nodeFs(1*gi, 100*gi, 1000, 1000)), "disk"},
		{hardP(SignalNodeFsInodesFree, 0.1), summary(nodeFs(50*gi, 100*gi, 10, 1000)), "disk"},
		{hardP(SignalImageFsAvailable, 0.1), summary(imageFs(1*gi, 100*gi, 1000, 1000)), "disk"},
		{hardP(SignalImageFsInodesFree, 0.1), summary(imageFs(50*gi, 100*gi, 10, 1000)), "disk"},
		{hardP(SignalPIDAvailable, 0.1), summary(rlimit(1000, 950)), "pid"},
	}
	for _, tt := range tests {
		t.Run(string(tt.threshold.Signal), func(t *testing.T) {
			h := newHarness(t, Options{Config: Config{Thresholds: []Threshold{tt.threshold}}}, tt.summary)
			h.pass(t)
			got := map[string]bool{"memory": h.m.IsUnderMemoryPressure(), "disk": h.m.IsUnderDiskPressure(), "pid": h.m.IsUnderPIDPressure()}
			for k, v := range got {
				if v != (k == tt.want) {
					t.Errorf("%s pressure = %v", k, v)
				}
			}
		})
	}
}

func TestCriticalPodsAreNeverEvicted(t *testing.T) {
	stats := summary(nodeMemory(50*mi, 3*gi), pods(
		podStat{name: "static", memory: 2 * gi},
		podStat{name: "mirror", memory: 1 * gi},
		podStat{name: "system", memory: 900 * mi},
		podStat{name: "regular", memory: 10 * mi},
	))
	mirror := pod("mirror")
	mirror.Annotations[configMirrorAnnotation] = "hash"
	critical := []*v1.Pod{pod("static", static), mirror, pod("system", priority(SystemCriticalPriority))}
	th := Options{Config: Config{Thresholds: []Threshold{hardQ(SignalMemoryAvailable, "100Mi")}}}

	h := newHarness(t, th, stats, append(slices.Clone(critical), pod("regular"))...)
	if got := h.pass(t); !slices.Equal(got, []string{"regular"}) {
		t.Fatalf("evicted %q, want [regular]: critical pods are skipped", got)
	}
	h.step(10 * time.Second)
	if got := h.pass(t); got != nil {
		t.Fatalf("evicted %q, want none: only critical pods left", got)
	}
	if got := h.killer.names(); !slices.Equal(got, []string{"regular"}) {
		t.Errorf("killer saw %q", got)
	}

	// A custom IsCritical replaces the default.
	th.IsCritical = func(p *v1.Pod) bool { return p.Name == "mirror" }
	h = newHarness(t, th, stats, append(slices.Clone(critical), pod("regular"))...)
	if got := h.pass(t); !slices.Equal(got, []string{"static"}) {
		t.Fatalf("with IsCritical: evicted %q, want [static]", got)
	}
}

func TestIsCriticalPod(t *testing.T) {
	mirror := pod("m")
	mirror.Annotations[configMirrorAnnotation] = "x"
	noAnnotations := pod("n")
	noAnnotations.Annotations = nil
	tests := []struct {
		pod  *v1.Pod
		want bool
	}{
		{pod("api"), false},
		{noAnnotations, false},
		{pod("file", static), true},
		{mirror, true},
		{pod("system-node-critical", priority(2000001000)), true},
		{pod("high", priority(SystemCriticalPriority-1)), false},
	}
	for _, tt := range tests {
		if got := IsCriticalPod(tt.pod); got != tt.want {
			t.Errorf("IsCriticalPod(%s) = %v, want %v", tt.pod.Name, got, tt.want)
		}
	}
}

func TestDiskReclaimBeforeEviction(t *testing.T) {
	base := func() *statsapi.Summary {
		return summary(
			nodeFs(5*gi, 100*gi, 1000, 1000), imageFs(5*gi, 100*gi, 1000, 1000),
			pods(podStat{name: "p", rootfs: 1 * gi}),
		)
	}
	tests := []struct {
		name      string
		threshold Threshold
		dedicated bool
		freeTo    uint64 // available bytes after GC; 0: GC frees nothing
		gcErr     error
		wantGC    []string
		wantEvict []string
	}{
		{"nodefs: GC frees enough", hardP(SignalNodeFsAvailable, 0.1), false, 50 * gi, nil, []string{"containers", "images"}, nil},
		{"nodefs: GC frees too little", hardP(SignalNodeFsAvailable, 0.1), false, 0, nil, []string{"containers", "images"}, []string{"p"}},
		{"nodefs: GC fails", hardP(SignalNodeFsAvailable, 0.1), false, 0, errors.New("boom"), []string{"containers", "images"}, []string{"p"}},
		{"imagefs: GC frees enough", hardP(SignalImageFsAvailable, 0.1), false, 50 * gi, nil, []string{"containers", "images"}, nil},
		{"dedicated imagefs: GC frees enough", hardP(SignalImageFsAvailable, 0.1), true, 50 * gi, nil, []string{"containers", "images"}, nil},
		{"dedicated imagefs: no GC for nodefs", hardP(SignalNodeFsAvailable, 0.1), true, 50 * gi, nil, nil, []string{"p"}},
		{"min reclaim must be met after GC", func() Threshold {
			th := hardP(SignalNodeFsAvailable, 0.1)
			th.MinReclaim = &ThresholdValue{Quantity: q("50Gi")}
			return th
		}(), false, 50 * gi, nil, []string{"containers", "images"}, []string{"p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			var h *harness
			gc := fakeGC{log: &calls, err: tt.gcErr, freed: 1 * gi, free: func() {
				if tt.freeTo > 0 {
					h.summary.update(func(s *statsapi.Summary) {
						*s.Node.Fs.AvailableBytes = tt.freeTo
						*s.Node.Runtime.ImageFs.AvailableBytes = tt.freeTo
					})
				}
			}}
			h = newHarness(t,
				Options{Config: Config{Thresholds: []Threshold{tt.threshold}}, ImageGC: gc, ContainerGC: gc, DiskInfo: fakeDiskInfo{tt.dedicated}},
				base(), pod("p"))
			if got := h.pass(t); !slices.Equal(got, tt.wantEvict) {
				t.Errorf("evicted %q, want %q", got, tt.wantEvict)
			}
			if !slices.Equal(calls, tt.wantGC) {
				t.Errorf("GC calls %q, want %q", calls, tt.wantGC)
			}
			if !h.m.IsUnderDiskPressure() {
				t.Error("no disk pressure")
			}
		})
	}
}

func TestMemoryBeforeDisk(t *testing.T) {
	// Both met: memory is reclaimed first, so no GC and a memory ranking.
	var calls []string
	gc := fakeGC{log: &calls}
	h := newHarness(t,
		Options{Config: Config{Thresholds: []Threshold{hardP(SignalNodeFsAvailable, 0.1), hardQ(SignalMemoryAvailable, "100Mi")}}, ImageGC: gc, ContainerGC: gc},
		summary(nodeMemory(50*mi, 3*gi), nodeFs(1*gi, 100*gi, 1000, 1000), pods(
			podStat{name: "disk-hog", rootfs: 50 * gi, memory: 10 * mi},
			podStat{name: "memory-hog", memory: 2 * gi},
		)),
		pod("disk-hog"), pod("memory-hog"),
	)
	if got := h.pass(t); !slices.Equal(got, []string{"memory-hog"}) {
		t.Errorf("evicted %q, want [memory-hog]", got)
	}
	if calls != nil {
		t.Errorf("GC ran: %q", calls)
	}
	if msg := h.killer.evicted[0].status.Message; !strings.HasPrefix(msg, "The node was low on resource: memory. ") {
		t.Errorf("message %q", msg)
	}
}

func TestPIDPressureEviction(t *testing.T) {
	h := newHarness(t,
		Options{Config: Config{Thresholds: []Threshold{hardP(SignalPIDAvailable, 0.1)}}},
		summary(rlimit(1000, 950), pods(podStat{name: "forky", procs: 800}, podStat{name: "calm", procs: 3})),
		pod("calm"), pod("forky"),
	)
	if got := h.pass(t); !slices.Equal(got, []string{"forky"}) {
		t.Errorf("evicted %q, want [forky]", got)
	}
}

func TestLocalStorageEviction(t *testing.T) {
	emptyDir := func(limit string) func(*v1.Pod) {
		return volume("scratch", v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: q(limit)}})
	}
	ephemeral := func(s string) v1.ResourceList {
		return v1.ResourceList{v1.ResourceEphemeralStorage: resource.MustParse(s)}
	}
	tests := []struct {
		name      string
		pod       *v1.Pod
		stat      podStat
		dedicated bool
		want      string // message, "" for no eviction
	}{
		{
			name: "emptyDir over its sizeLimit",
			pod:  pod("p", emptyDir("100Mi")),
			stat: podStat{name: "p", volumes: map[string]uint64{"scratch": 200 * mi}},
			want: `Usage of EmptyDir volume "scratch" exceeds the limit "100Mi". `,
		},
		{
			name: "emptyDir within its sizeLimit",
			pod:  pod("p", emptyDir("100Mi")),
			stat: podStat{name: "p", volumes: map[string]uint64{"scratch": 100 * mi}},
		},
		{
			name: "pod over its ephemeral-storage limit",
			pod: pod("p", limits(ephemeral("1Gi")), func(p *v1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "d", Resources: v1.ResourceRequirements{Limits: ephemeral("1Gi")}})
			}),
			stat: podStat{name: "p", ephemeral: ptr[uint64](3 * gi), containers: []string{"c", "d"}},
			want: "Pod ephemeral local storage usage exceeds the total limit of containers 2Gi. ",
		},
		{
			name: "container over its ephemeral-storage limit",
			pod: pod("p", func(p *v1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "d", Resources: v1.ResourceRequirements{Limits: ephemeral("100Mi")}})
			}),
			stat: podStat{name: "p", rootfs: 60 * mi, logs: 60 * mi, containers: []string{"c", "d"}},
			want: `Container d exceeded its local ephemeral storage limit "100Mi". `,
		},
		{
			name:      "container writable layer on a dedicated imagefs does not count",
			pod:       pod("p", limits(ephemeral("100Mi"))),
			stat:      podStat{name: "p", rootfs: 60 * mi, logs: 60 * mi, ephemeral: ptr[uint64](60 * mi)},
			dedicated: true,
		},
		{
			name:      "logs alone over the limit on a dedicated imagefs",
			pod:       pod("p", limits(ephemeral("100Mi"))),
			stat:      podStat{name: "p", rootfs: 1 * mi, logs: 120 * mi, ephemeral: ptr[uint64](60 * mi)},
			dedicated: true,
			want:      `Container c exceeded its local ephemeral storage limit "100Mi". `,
		},
		{
			name: "critical pods are not evicted",
			pod:  pod("p", static, emptyDir("100Mi")),
			stat: podStat{name: "p", volumes: map[string]uint64{"scratch": 200 * mi}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No threshold is met: local storage limits alone evict.
			h := newHarness(t,
				Options{Config: Config{Thresholds: []Threshold{hardQ(SignalMemoryAvailable, "100Mi")}}, DiskInfo: fakeDiskInfo{tt.dedicated}},
				summary(nodeMemory(2*gi, 1*gi), pods(tt.stat, podStat{name: "fine"})),
				tt.pod, pod("fine"))
			got := h.pass(t)
			if tt.want == "" {
				if got != nil {
					t.Fatalf("evicted %q", got)
				}
				return
			}
			if !slices.Equal(got, []string{"p"}) {
				t.Fatalf("evicted %q, want [p]", got)
			}
			e := h.killer.evicted[0]
			if e.status.Message != tt.want || e.status.Reason != "Evicted" || e.status.Phase != v1.PodFailed {
				t.Errorf("status %s %q %q, want message %q", e.status.Phase, e.status.Reason, e.status.Message, tt.want)
			}
			if e.grace != HardEvictionGracePeriodSeconds || len(e.status.Conditions) != 0 {
				t.Errorf("grace %d conditions %v", e.grace, e.status.Conditions)
			}
		})
	}

	t.Run("disabled", func(t *testing.T) {
		h := newHarness(t, Options{DisableLocalStorageEviction: true},
			summary(pods(podStat{name: "p", volumes: map[string]uint64{"scratch": 200 * mi}})), pod("p", emptyDir("100Mi")))
		if got := h.pass(t); got != nil {
			t.Errorf("evicted %q", got)
		}
	})
	t.Run("every offending pod in one pass", func(t *testing.T) {
		h := newHarness(t, Options{},
			summary(pods(
				podStat{name: "a", volumes: map[string]uint64{"scratch": 200 * mi}},
				podStat{name: "b", volumes: map[string]uint64{"scratch": 300 * mi}},
			)),
			pod("a", emptyDir("100Mi")), pod("b", emptyDir("100Mi")))
		if got := h.pass(t); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("evicted %q, want [a b]", got)
		}
	})
}

func TestAdmit(t *testing.T) {
	memoryPressure := summary(nodeMemory(50*mi, 3*gi))
	diskPressure := summary(nodeMemory(2*gi, 1*gi), nodeFs(1*gi, 100*gi, 1000, 1000))
	pidPressure := summary(nodeMemory(2*gi, 1*gi), rlimit(100, 99))
	both := summary(nodeMemory(50*mi, 3*gi), nodeFs(1*gi, 100*gi, 1000, 1000))
	healthy := summary(nodeMemory(2*gi, 1*gi), nodeFs(50*gi, 100*gi, 1000, 1000))

	bestEffort := pod("best-effort")
	burstable := pod("burstable", memRequest("100Mi"))
	tolerant := pod("tolerant", func(p *v1.Pod) {
		p.Spec.Tolerations = []v1.Toleration{{Key: v1.TaintNodeMemoryPressure, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
	})
	tolerateAll := pod("tolerate-all", func(p *v1.Pod) { p.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}} })
	tolerateOther := pod("tolerate-other", func(p *v1.Pod) {
		p.Spec.Tolerations = []v1.Toleration{{Key: v1.TaintNodeDiskPressure, Operator: v1.TolerationOpExists}}
	})
	tolerateNoExecute := pod("tolerate-noexecute", func(p *v1.Pod) {
		p.Spec.Tolerations = []v1.Toleration{{Key: v1.TaintNodeMemoryPressure, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute}}
	})
	qosInStatus := pod("qos-status", memRequest("100Mi"), func(p *v1.Pod) { p.Status.QOSClass = v1.PodQOSBestEffort })
	criticalBestEffort := pod("critical", static)

	tests := []struct {
		name    string
		summary *statsapi.Summary
		pod     *v1.Pod
		want    string // "" admitted, else the message
	}{
		{"healthy", healthy, bestEffort, ""},
		{"memory pressure, burstable", memoryPressure, burstable, ""},
		{"memory pressure, best effort", memoryPressure, bestEffort, "The node had condition: [MemoryPressure]. "},
		{"memory pressure, best effort in status", memoryPressure, qosInStatus, "The node had condition: [MemoryPressure]. "},
		{"memory pressure, best effort tolerating the taint", memoryPressure, tolerant, ""},
		{"memory pressure, best effort tolerating everything", memoryPressure, tolerateAll, ""},
		{"memory pressure, best effort tolerating another taint", memoryPressure, tolerateOther, "The node had condition: [MemoryPressure]. "},
		{"memory pressure, best effort tolerating NoExecute only", memoryPressure, tolerateNoExecute, "The node had condition: [MemoryPressure]. "},
		{"memory pressure, critical", memoryPressure, criticalBestEffort, ""},
		{"disk pressure, burstable", diskPressure, burstable, "The node had condition: [DiskPressure]. "},
		{"disk pressure, critical", diskPressure, criticalBestEffort, ""},
		{"pid pressure, burstable", pidPressure, burstable, "The node had condition: [PIDPressure]. "},
		{"memory and disk pressure, tolerating memory pressure", both, tolerant, "The node had condition: [MemoryPressure DiskPressure]. "},
	}
	ths := []Threshold{hardQ(SignalMemoryAvailable, "100Mi"), hardP(SignalNodeFsAvailable, 0.1), hardQ(SignalPIDAvailable, "10")}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Synchronize sets the conditions; no pod is active, so none is evicted.
			h := newHarness(t, Options{Config: Config{Thresholds: ths}}, tt.summary)
			h.pass(t)
			ok, reason, msg := h.m.Admit(tt.pod)
			if tt.want == "" {
				if !ok || reason != "" || msg != "" {
					t.Errorf("Admit = %v %q %q, want admitted", ok, reason, msg)
				}
				return
			}
			if ok || reason != "Evicted" || msg != tt.want {
				t.Errorf("Admit = %v %q %q, want refused with %q", ok, reason, msg, tt.want)
			}
		})
	}
}

func TestSynchronizeErrors(t *testing.T) {
	th := Options{Config: Config{Thresholds: []Threshold{hardQ(SignalMemoryAvailable, "100Mi")}}}
	t.Run("summary", func(t *testing.T) {
		h := newHarness(t, th, nil)
		h.summary.err = errors.New("no cgroups")
		_, err := h.m.Synchronize(context.Background())
		if err == nil || err.Error() != "eviction: get stats summary: no cgroups" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("disk info", func(t *testing.T) {
		h := newHarness(t, th, summary())
		h.m.o.DiskInfo = diskInfoFunc(func() (bool, error) { return false, errors.New("no device") })
		_, err := h.m.Synchronize(context.Background())
		if err == nil || err.Error() != "eviction: find whether the imagefs is dedicated: no device" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("killer", func(t *testing.T) {
		killErr := errors.New("runtime down")
		h := newHarness(t, th, summary(nodeMemory(50*mi, 3*gi), pods(podStat{name: "p"})), pod("p"))
		h.killer.err = killErr
		evicted, err := h.m.Synchronize(context.Background())
		if !errors.Is(err, killErr) || err.Error() != "eviction: evict pod default/p: runtime down" {
			t.Errorf("err = %v", err)
		}
		if len(evicted) != 1 {
			t.Errorf("evicted %v: a failed eviction still ends the pass", evicted)
		}
	})
}

type diskInfoFunc func() (bool, error)

func (f diskInfoFunc) HasDedicatedImageFs(context.Context) (bool, error) { return f() }

// fakeNotifier counts UpdateThreshold calls and calls notify when poked.
type fakeNotifier struct {
	updates     int
	poke, poked chan struct{}
}

func (f *fakeNotifier) UpdateThreshold(*statsapi.Summary) error { f.updates++; return nil }

func (f *fakeNotifier) Run(ctx context.Context, notify func()) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.poke:
			notify()
			f.poked <- struct{}{}
		}
	}
}

func TestNotifiersRefreshedEvery10s(t *testing.T) {
	n := &fakeNotifier{}
	h := newHarness(t, Options{Notifiers: []ThresholdNotifier{n}, Config: Config{Thresholds: []Threshold{hardQ(SignalMemoryAvailable, "100Mi")}}},
		summary(nodeMemory(2*gi, 1*gi)))
	for i, want := range []int{1, 1, 1, 2, 2} {
		h.pass(t)
		if n.updates != want {
			t.Errorf("pass %d: %d updates, want %d", i+1, n.updates, want)
		}
		h.step(5 * time.Second) // passes at 0s, 5s, 10s, 15s (refresh: more than 10s), 20s
	}
}

func TestRunPassesOnIntervalAndNotify(t *testing.T) {
	n := &fakeNotifier{poke: make(chan struct{}), poked: make(chan struct{})}
	h := newHarness(t, Options{Notifiers: []ThresholdNotifier{n}, Interval: 10 * time.Second,
		Config: Config{Thresholds: []Threshold{hardQ(SignalMemoryAvailable, "100Mi")}}},
		summary(nodeMemory(2*gi, 1*gi)))
	// After each pass Run reports the summary calls so far and waits for
	// resume: meanwhile the test arranges what wakes it next.
	passed := make(chan int, 10)
	resume := make(chan struct{})
	h.m.afterPass = func() {
		passed <- h.summary.getCalls()
		<-resume
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		h.m.Run(ctx)
		close(done)
	}()
	expect := func(what string, want int) {
		t.Helper()
		if calls := <-passed; calls != want {
			t.Fatalf("%s: %d summary calls, want %d", what, calls, want)
		}
	}

	expect("first pass", 1)
	h.m.Notify()
	resume <- struct{}{}
	expect("after Notify", 2)

	h.clock.Step(10 * time.Second) // the interval
	resume <- struct{}{}
	expect("after the interval", 3)

	n.poke <- struct{}{} // the notifier, run by Run, calls Notify
	<-n.poked
	resume <- struct{}{}
	expect("after the notifier", 4)

	h.m.Notify()
	h.m.Notify() // coalesced with the previous one
	resume <- struct{}{}
	expect("after two Notify", 5)

	cancel()
	close(resume)
	<-done
	if len(passed) != 0 || h.summary.getCalls() != 5 {
		t.Errorf("%d more passes, %d summary calls after Run returned, want none and 5", len(passed), h.summary.getCalls())
	}
}

func TestNoThresholdsNoLocalStorage(t *testing.T) {
	h := newHarness(t, Options{DisableLocalStorageEviction: true}, summary(nodeMemory(1, 1)))
	h.pass(t)
	if h.summary.getCalls() != 0 {
		t.Error("a pass with nothing to do read the stats")
	}
}

func TestNoActivePods(t *testing.T) {
	h := newHarness(t, Options{Config: Config{Thresholds: []Threshold{hardQ(SignalMemoryAvailable, "100Mi")}}}, summary(nodeMemory(50*mi, 3*gi)))
	if got := h.pass(t); got != nil {
		t.Errorf("evicted %q", got)
	}
	if !h.m.IsUnderMemoryPressure() {
		t.Error("no memory pressure")
	}
}
