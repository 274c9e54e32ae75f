package eviction

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	ki = 1024
	mi = 1024 * ki
	gi = 1024 * mi
)

func ptr[T any](v T) *T { return &v }

func q(s string) *resource.Quantity {
	v := resource.MustParse(s)
	return &v
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeSummary serves a Summary the test changes between passes.
type fakeSummary struct {
	mu    sync.Mutex
	s     *statsapi.Summary
	err   error
	calls int
}

func (f *fakeSummary) Get(context.Context) (*statsapi.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.s, f.err
}

func (f *fakeSummary) update(fn func(s *statsapi.Summary)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.s)
}

func (f *fakeSummary) getCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type evictCall struct {
	pod    string
	grace  int64
	status v1.PodStatus
}

// fakeKiller records evictions and removes the pod from the fake pods.
type fakeKiller struct {
	mu      sync.Mutex
	evicted []evictCall
	err     error
	pods    *fakePods
}

func (f *fakeKiller) EvictPod(_ context.Context, pod *v1.Pod, grace int64, status v1.PodStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evicted = append(f.evicted, evictCall{pod.Name, grace, status})
	if f.err != nil {
		return f.err
	}
	if f.pods != nil {
		f.pods.remove(pod.Name)
	}
	return nil
}

func (f *fakeKiller) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.evicted {
		out = append(out, e.pod)
	}
	return out
}

type fakePods struct {
	mu   sync.Mutex
	pods []*v1.Pod
}

func (f *fakePods) ActivePods() []*v1.Pod {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*v1.Pod(nil), f.pods...)
}

func (f *fakePods) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.pods {
		if p.Name == name {
			f.pods = append(f.pods[:i], f.pods[i+1:]...)
			return
		}
	}
}

// fakeGC records calls in order into log and runs free.
type fakeGC struct {
	log   *[]string
	free  func()
	freed uint64
	err   error
}

func (g fakeGC) DeleteUnusedImages(context.Context) (uint64, error) {
	*g.log = append(*g.log, "images")
	if g.free != nil {
		g.free()
	}
	return g.freed, g.err
}

func (g fakeGC) DeleteUnusedContainers(context.Context) error {
	*g.log = append(*g.log, "containers")
	if g.free != nil {
		g.free()
	}
	return g.err
}

type fakeDiskInfo struct{ dedicated bool }

func (f fakeDiskInfo) HasDedicatedImageFs(context.Context) (bool, error) { return f.dedicated, nil }

// harness is a Manager on fakes with a fake clock at t0.
type harness struct {
	m       *Manager
	clock   *clocktesting.FakeClock
	summary *fakeSummary
	pods    *fakePods
	killer  *fakeKiller
}

func newHarness(t *testing.T, o Options, s *statsapi.Summary, pods ...*v1.Pod) *harness {
	t.Helper()
	h := &harness{
		clock:   clocktesting.NewFakeClock(t0),
		summary: &fakeSummary{s: s},
		pods:    &fakePods{pods: pods},
	}
	h.killer = &fakeKiller{pods: h.pods}
	o.Summary, o.Pods, o.Killer, o.Clock, o.Logger = h.summary, h.pods, h.killer, h.clock, discard()
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

// pass runs one Synchronize and returns the names of the pods it evicted.
func (h *harness) pass(t *testing.T) []string {
	t.Helper()
	evicted, err := h.m.Synchronize(context.Background())
	if err != nil {
		t.Fatalf("Synchronize: %v", err)
	}
	var names []string
	for _, p := range evicted {
		names = append(names, p.Name)
	}
	return names
}

// step advances the fake clock and stamps the stats with the new time, so the
// manager sees fresh observations.
func (h *harness) step(d time.Duration) {
	h.clock.Step(d)
	now := metav1.NewTime(h.clock.Now())
	h.summary.update(func(s *statsapi.Summary) { stamp(s, now) })
}

func stamp(s *statsapi.Summary, now metav1.Time) {
	if s.Node.Memory != nil {
		s.Node.Memory.Time = now
	}
	if s.Node.Fs != nil {
		s.Node.Fs.Time = now
	}
	if s.Node.Runtime != nil && s.Node.Runtime.ImageFs != nil {
		s.Node.Runtime.ImageFs.Time = now
	}
	if s.Node.Rlimit != nil {
		s.Node.Rlimit.Time = now
	}
	for i := range s.Node.SystemContainers {
		if s.Node.SystemContainers[i].Memory != nil {
			s.Node.SystemContainers[i].Memory.Time = now
		}
	}
}

// Summary builders.

func summary(opts ...func(*statsapi.Summary)) *statsapi.Summary {
	s := &statsapi.Summary{Node: statsapi.NodeStats{NodeName: "node"}}
	for _, o := range opts {
		o(s)
	}
	stamp(s, metav1.NewTime(t0))
	return s
}

func nodeMemory(available, workingSet uint64) func(*statsapi.Summary) {
	return func(s *statsapi.Summary) {
		s.Node.Memory = &statsapi.MemoryStats{AvailableBytes: ptr(available), WorkingSetBytes: ptr(workingSet), UsageBytes: ptr(workingSet)}
	}
}

func nodeFs(available, capacity, inodesFree, inodes uint64) func(*statsapi.Summary) {
	return func(s *statsapi.Summary) {
		s.Node.Fs = &statsapi.FsStats{AvailableBytes: ptr(available), CapacityBytes: ptr(capacity), InodesFree: ptr(inodesFree), Inodes: ptr(inodes)}
	}
}

func imageFs(available, capacity, inodesFree, inodes uint64) func(*statsapi.Summary) {
	return func(s *statsapi.Summary) {
		s.Node.Runtime = &statsapi.RuntimeStats{ImageFs: &statsapi.FsStats{AvailableBytes: ptr(available), CapacityBytes: ptr(capacity), InodesFree: ptr(inodesFree), Inodes: ptr(inodes)}}
	}
}

func rlimit(maxPID, running int64) func(*statsapi.Summary) {
	return func(s *statsapi.Summary) {
		s.Node.Rlimit = &statsapi.RlimitStats{MaxPID: ptr(maxPID), NumOfRunningProcesses: ptr(running)}
	}
}

func podsContainer(available, workingSet uint64) func(*statsapi.Summary) {
	return func(s *statsapi.Summary) {
		s.Node.SystemContainers = append(s.Node.SystemContainers, statsapi.ContainerStats{
			Name:   statsapi.SystemContainerPods,
			Memory: &statsapi.MemoryStats{AvailableBytes: ptr(available), WorkingSetBytes: ptr(workingSet), UsageBytes: ptr(workingSet)},
		})
	}
}

// podStat is one pod's stats, keyed by the pod's name (which is its UID here).
type podStat struct {
	name       string
	memory     uint64 // working set
	rootfs     uint64 // per container
	logs       uint64 // per container
	inodes     uint64 // rootfs inodes per container
	procs      uint64
	volumes    map[string]uint64 // used bytes
	ephemeral  *uint64           // pod ephemeral-storage used
	containers []string          // default: "c"
}

func pods(stats ...podStat) func(*statsapi.Summary) {
	return func(s *statsapi.Summary) {
		for _, p := range stats {
			ps := statsapi.PodStats{
				PodRef:       statsapi.PodReference{Name: p.name, Namespace: "default", UID: p.name},
				Memory:       &statsapi.MemoryStats{WorkingSetBytes: ptr(p.memory)},
				ProcessStats: &statsapi.ProcessStats{ProcessCount: ptr(p.procs)},
			}
			names := p.containers
			if names == nil {
				names = []string{"c"}
			}
			for _, c := range names {
				ps.Containers = append(ps.Containers, statsapi.ContainerStats{
					Name:   c,
					Memory: &statsapi.MemoryStats{WorkingSetBytes: ptr(p.memory / uint64(len(names)))},
					Rootfs: &statsapi.FsStats{UsedBytes: ptr(p.rootfs), InodesUsed: ptr(p.inodes)},
					Logs:   &statsapi.FsStats{UsedBytes: ptr(p.logs), InodesUsed: ptr[uint64](0)},
				})
			}
			for name, used := range p.volumes {
				ps.VolumeStats = append(ps.VolumeStats, statsapi.VolumeStats{Name: name, FsStats: statsapi.FsStats{UsedBytes: ptr(used), InodesUsed: ptr[uint64](1)}})
			}
			if p.ephemeral != nil {
				ps.EphemeralStorage = &statsapi.FsStats{UsedBytes: p.ephemeral}
			}
			s.Pods = append(s.Pods, ps)
		}
	}
}

// Pod builders.

func pod(name string, opts ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name), Annotations: map[string]string{configSourceAnnotation: apiserverSource}},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func requests(rl v1.ResourceList) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Containers[0].Resources.Requests = rl }
}

func limits(rl v1.ResourceList) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Containers[0].Resources.Limits = rl }
}

func memRequest(s string) func(*v1.Pod) {
	return requests(v1.ResourceList{v1.ResourceMemory: resource.MustParse(s)})
}

func priority(v int32) func(*v1.Pod) { return func(p *v1.Pod) { p.Spec.Priority = ptr(v) } }

func static(p *v1.Pod) { p.Annotations[configSourceAnnotation] = "file" }

func grace(s int64) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr(s) }
}

func volume(name string, src v1.VolumeSource) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: name, VolumeSource: src}) }
}

// hard and soft thresholds.

func hardQ(sig Signal, v string) Threshold {
	return Threshold{Signal: sig, Value: ThresholdValue{Quantity: q(v)}}
}

func hardP(sig Signal, p float64) Threshold {
	return Threshold{Signal: sig, Value: ThresholdValue{Percentage: p}}
}

func soft(sig Signal, v string, grace time.Duration) Threshold {
	return Threshold{Signal: sig, Value: ThresholdValue{Quantity: q(v)}, GracePeriod: grace}
}
