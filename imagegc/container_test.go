package imagegc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// podStates answers PodDeleted and PodTerminated: pods in deleted are gone,
// every pod but those in running is terminated.
type podStates struct {
	deleted, running map[types.UID]bool
}

func (p podStates) podDeleted(uid types.UID) bool    { return p.deleted[uid] }
func (p podStates) podTerminated(uid types.UID) bool { return !p.running[uid] }

var testPods = podStates{
	deleted: map[types.UID]bool{"deleted": true, "gone": true, "old-layout": true},
	running: map[types.UID]bool{"running": true},
}

type containerHarness struct {
	rt    *fakeRuntime
	clock *testingclock.FakeClock
	gc    *ContainerGC
}

func newContainerHarness(t *testing.T, o ContainerOptions) *containerHarness {
	t.Helper()
	h := &containerHarness{rt: &fakeRuntime{}, clock: testingclock.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
	o.Runtime, o.Clock, o.Logger = h.rt, h.clock, quietLogger()
	if o.PodDeleted == nil {
		o.PodDeleted = testPods.podDeleted
	}
	if o.PodTerminated == nil {
		o.PodTerminated = testPods.podTerminated
	}
	if o.PodLogsDir == "" {
		o.PodLogsDir = t.TempDir()
	}
	gc, err := NewContainerGC(o)
	if err != nil {
		t.Fatalf("NewContainerGC: %v", err)
	}
	h.gc = gc
	return h
}

// ctr describes a container of a test: pod (also its UID), container name,
// age in minutes past the hour-long MinAge (negative: younger than MinAge),
// state.
type ctr struct {
	pod, name string
	age       int
	state     runtimeapi.ContainerState
}

// The kubelet's cases (kuberuntime_gc_test.go), with its default policy of
// MinAge 1h, MaxPerPodContainer 2, MaxContainers 6.
func TestContainerGCEvictContainers(t *testing.T) {
	for _, tc := range []struct {
		name                string
		perPod, max         int
		containers          []ctr
		remain              []int // indexes of the containers left
		evictNonDeletedPods bool
		notAllSourcesReady  bool
	}{{
		name: "max containers 0 removes all", perPod: 1, max: 0,
		containers: []ctr{{"foo", "bar", 0, exited}},
		remain:     []int{},
	}, {
		name: "max containers without a per-pod limit", perPod: -1, max: 4,
		containers: []ctr{{"foo", "bar", 0, exited}, {"foo", "bar", 1, exited}, {"foo", "bar", 2, exited}, {"foo", "bar", 3, exited}, {"foo", "bar", 4, exited}},
		remain:     []int{0, 1, 2, 3},
	}, {
		name: "no limits removes nothing", perPod: -1, max: -1,
		containers: []ctr{{"foo", "bar", 0, exited}, {"foo", "bar", 1, exited}, {"foo", "bar", 2, exited}},
		remain:     []int{0, 1, 2},
	}, {
		name:       "containers younger than MinAge stay",
		containers: []ctr{{"foo", "bar", -1, exited}, {"foo", "bar", -2, exited}, {"foo", "bar", -3, exited}},
		remain:     []int{0, 1, 2},
	}, {
		name:       "the oldest go over the per-pod limit",
		containers: []ctr{{"foo", "bar", 0, exited}, {"foo", "bar", 1, exited}, {"foo", "bar", 2, exited}},
		remain:     []int{0, 1},
	}, {
		name:       "running containers stay",
		containers: []ctr{{"foo", "bar", 0, exited}, {"foo", "bar", 1, exited}, {"foo", "bar", 2, running}},
		remain:     []int{0, 1, 2},
	}, {
		name:       "created and unknown containers are dead",
		containers: []ctr{{"foo", "bar", 0, created}, {"foo", "bar", 1, exited}, {"foo", "bar", 2, unknown}, {"foo", "bar", 3, created}},
		remain:     []int{0, 1},
	}, {
		name:       "within the limits nothing goes",
		containers: []ctr{{"foo", "bar", 0, exited}, {"foo", "bar", 1, exited}},
		remain:     []int{0, 1},
	}, {
		name: "the per-pod limit is per pod and container name",
		containers: []ctr{
			{"foo", "bar", 0, exited}, {"foo", "bar", 1, exited}, {"foo", "bar", 2, exited},
			{"foo1", "baz", 0, exited}, {"foo1", "baz", 1, exited}, {"foo1", "baz", 2, exited},
			{"foo2", "bar", 0, exited}, {"foo2", "bar", 1, exited}, {"foo2", "bar", 2, exited},
		},
		remain: []int{0, 1, 3, 4, 6, 7},
	}, {
		name: "max containers keeps a fair share of every pod",
		containers: []ctr{
			{"foo", "bar", 0, exited}, {"foo", "bar", 1, exited},
			{"foo1", "bar1", 0, exited}, {"foo1", "bar1", 1, exited},
			{"foo2", "bar2", 0, exited}, {"foo2", "bar2", 1, exited},
			{"foo3", "bar3", 0, exited}, {"foo3", "bar3", 1, exited},
			{"foo4", "bar4", 0, exited}, {"foo4", "bar4", 1, exited},
		},
		remain: []int{0, 2, 4, 6, 8},
	}, {
		name: "then the oldest on the node go",
		containers: []ctr{
			{"foo", "bar", 0, exited}, {"foo", "bar", 1, exited},
			{"foo1", "bar1", 0, exited}, {"foo1", "bar1", 1, exited},
			{"foo2", "bar2", 1, exited},
			{"foo3", "bar3", 2, exited},
			{"foo4", "bar4", 1, exited},
			{"foo5", "bar5", 2, exited},
			{"foo6", "bar6", 0, exited},
			{"foo7", "bar7", 1, exited},
		},
		remain: []int{0, 2, 4, 6, 8, 9},
	}, {
		name: "evicting non-deleted pods removes every dead container of terminated pods",
		containers: []ctr{
			{"foo", "bar", 0, exited}, {"foo", "bar", 1, exited},
			{"foo1", "bar1", 0, exited}, {"foo1", "bar1", 1, exited},
			{"running", "bar2", 1, exited},
			{"foo3", "bar3", 2, running},
		},
		remain:              []int{4, 5},
		evictNonDeletedPods: true,
	}, {
		name: "containers of deleted pods go, but not before MinAge",
		containers: []ctr{
			{"foo", "bar", 0, exited}, {"foo", "bar", 1, exited},
			{"deleted", "bar1", -1, exited}, {"deleted", "bar1", 1, exited}, {"deleted", "bar1", 2, exited},
		},
		remain: []int{0, 1, 2},
	}, {
		name:                "nothing of deleted pods goes before all sources are ready",
		containers:          []ctr{{"deleted", "bar1", 0, exited}},
		remain:              []int{0},
		evictNonDeletedPods: true,
		notAllSourcesReady:  true,
	}, {
		name: "running containers of deleted pods stay",
		containers: []ctr{
			{"deleted", "bar", 0, running}, {"deleted", "bar", 1, exited},
		},
		remain: []int{0},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			o := ContainerOptions{MinAge: time.Hour, MaxPerPodContainer: ptr.To(2), MaxContainers: ptr.To(6)}
			if tc.perPod != 0 || tc.max != 0 {
				o.MaxPerPodContainer, o.MaxContainers = ptr.To(tc.perPod), ptr.To(tc.max)
			}
			h := newContainerHarness(t, o)
			now := h.clock.Now()
			var all []*runtimeapi.Container
			for i, c := range tc.containers {
				all = append(all, podContainer("c"+strconv.Itoa(i), c.pod, c.name, now.Add(-time.Hour-time.Duration(c.age)*time.Minute).Add(-time.Second), c.state))
			}
			h.rt.setContainers(all...)
			if err := h.gc.GarbageCollect(context.Background(), !tc.notAllSourcesReady, tc.evictNonDeletedPods); err != nil {
				t.Fatalf("GarbageCollect: %v", err)
			}
			var want []string
			for _, i := range tc.remain {
				want = append(want, "c"+strconv.Itoa(i))
			}
			slices.Sort(want)
			if got := h.rt.containerIDs(); !slices.Equal(got, want) {
				t.Fatalf("containers left = %v, want %v", got, want)
			}
		})
	}
}

// In the test cases above a smaller age is a newer container: age 0 is the
// newest. (The kubelet's tests number creation times the other way.)

func TestContainerGCDefaults(t *testing.T) {
	h := newContainerHarness(t, ContainerOptions{})
	if h.gc.maxPerPod != 1 || h.gc.maxContainers != -1 || h.gc.o.MinAge != 0 || h.gc.o.Period != time.Minute {
		t.Fatalf("defaults: maxPerPod %d, maxContainers %d, options %+v", h.gc.maxPerPod, h.gc.maxContainers, h.gc.o)
	}
	now := h.clock.Now()
	h.rt.setContainers(
		podContainer("new", "foo", "app", now, exited),
		podContainer("old", "foo", "app", now.Add(-time.Second), exited),
		podContainer("other", "foo", "sidecar", now.Add(-time.Hour), exited),
	)
	if err := h.gc.GarbageCollect(context.Background(), true, false); err != nil {
		t.Fatalf("GarbageCollect: %v", err)
	}
	if got, want := h.rt.containerIDs(), []string{"new", "other"}; !slices.Equal(got, want) {
		t.Fatalf("containers left = %v, want %v", got, want)
	}
}

func TestNewContainerGCValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    ContainerOptions
		want string
	}{
		{"no runtime", ContainerOptions{PodDeleted: testPods.podDeleted}, "Runtime: required"},
		{"no pod state", ContainerOptions{Runtime: &fakeRuntime{}}, "PodDeleted: required"},
		{"negative min age", ContainerOptions{Runtime: &fakeRuntime{}, PodDeleted: testPods.podDeleted, MinAge: -time.Minute}, "MinAge -1m0s: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewContainerGC(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewContainerGC: err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// Containers without the pod UID label are not the agent's.
func TestContainerGCLeavesForeignContainers(t *testing.T) {
	h := newContainerHarness(t, ContainerOptions{MaxContainers: ptr.To(0)})
	foreign := podContainer("foreign", "x", "app", time.Unix(0, 0), exited)
	delete(foreign.Labels, kubetypes.KubernetesPodUIDLabel)
	foreignSandbox := &runtimeapi.PodSandbox{Id: "foreign-sb", State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}
	h.rt.setContainers(foreign)
	h.rt.sandboxes = []*runtimeapi.PodSandbox{foreignSandbox}
	if err := h.gc.GarbageCollect(context.Background(), true, true); err != nil {
		t.Fatalf("GarbageCollect: %v", err)
	}
	if got := h.rt.Calls(); len(got) != 0 {
		t.Fatalf("calls = %v, want none", got)
	}
}

// A container in an unknown state is stopped (with its pod's grace period)
// before it is removed.
func TestContainerGCStopsUnknownContainers(t *testing.T) {
	h := newContainerHarness(t, ContainerOptions{MaxPerPodContainer: ptr.To(0)})
	a := podContainer("a", "foo", "app", time.Unix(0, 0), unknown)
	a.Annotations = map[string]string{annotationTerminationGracePeriod: "30"}
	b := podContainer("b", "foo", "side", time.Unix(0, 0), unknown)
	b.Annotations = map[string]string{annotationTerminationGracePeriod: "30", annotationDeletionGracePeriod: "0"}
	c := podContainer("c", "foo", "init", time.Unix(0, 0), unknown)
	h.rt.setContainers(a, b, c)
	if err := h.gc.GarbageCollect(context.Background(), true, false); err != nil {
		t.Fatalf("GarbageCollect: %v", err)
	}
	got := h.rt.Calls("StopContainer", "RemoveContainer")
	slices.Sort(got)
	want := []string{"RemoveContainer a", "RemoveContainer b", "RemoveContainer c", "StopContainer a 30", "StopContainer b 2", "StopContainer c 2"}
	if !slices.Equal(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	for _, id := range []string{"a", "b", "c"} {
		calls := h.rt.Calls("StopContainer", "RemoveContainer")
		stop := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "StopContainer "+id+" ") })
		remove := slices.Index(calls, "RemoveContainer "+id)
		if stop > remove {
			t.Errorf("container %s removed before it was stopped: %v", id, calls)
		}
	}
}

// A removed container's log file and its rotations go with it; the hook sees
// its status. A failed removal leaves its logs and does not stop the others.
func TestContainerGCRemovesLogFiles(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var seen []string
	h := newContainerHarness(t, ContainerOptions{
		MaxPerPodContainer: ptr.To(0),
		ContainerRemoved: func(_ context.Context, st *runtimeapi.ContainerStatus) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, st.GetId()+" "+st.GetLogPath())
		},
	})
	write := func(names ...string) {
		for _, n := range names {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, n)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, n), []byte("log\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("app/0.log", "app/0.log.20260102-030405", "app/0.log.20260102-030405.gz", "app/1.log", "app/0.logx", "stuck.log", "stuck.log.1")
	h.rt.logPaths = map[string]string{"a": filepath.Join(dir, "app/0.log"), "stuck": filepath.Join(dir, "stuck.log"), "rel": "relative.log"}
	h.rt.failRemove = map[string]error{"stuck": errors.New("device busy")}
	h.rt.setContainers(
		podContainer("a", "foo", "app", time.Unix(0, 0), exited),
		podContainer("stuck", "foo", "stuck", time.Unix(0, 0), exited),
		podContainer("rel", "foo", "rel", time.Unix(0, 0), exited),
	)
	err := h.gc.GarbageCollect(context.Background(), true, false)
	if err == nil || !strings.Contains(err.Error(), "remove container stuck (stuck): device busy") {
		t.Fatalf("GarbageCollect: err = %v, want the failure to remove stuck", err)
	}
	var left []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			left = append(left, rel)
		}
		return nil
	})
	if want := []string{"app/0.logx", "app/1.log", "stuck.log", "stuck.log.1"}; !slices.Equal(left, want) {
		t.Errorf("files left = %v, want %v", left, want)
	}
	if got, want := h.rt.containerIDs(), []string{"stuck"}; !slices.Equal(got, want) {
		t.Errorf("containers left = %v, want %v", got, want)
	}
	slices.Sort(seen)
	if want := []string{"a " + filepath.Join(dir, "app/0.log"), "rel relative.log"}; !slices.Equal(seen, want) {
		t.Errorf("ContainerRemoved saw %v, want %v", seen, want)
	}
}

func TestContainerGCSandboxes(t *testing.T) {
	sandbox := func(id, uid string, age time.Duration, ready bool) *runtimeapi.PodSandbox {
		st := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		if ready {
			st = runtimeapi.PodSandboxState_SANDBOX_READY
		}
		return &runtimeapi.PodSandbox{
			Id: id, State: st, CreatedAt: time.Unix(1000, 0).Add(-age).UnixNano(),
			Metadata: &runtimeapi.PodSandboxMetadata{Uid: uid},
			Labels:   map[string]string{kubetypes.KubernetesPodUIDLabel: uid},
		}
	}
	holding := func(sandboxID string) *runtimeapi.Container {
		c := podContainer("in-"+sandboxID, "x", "app", time.Unix(0, 0), running)
		c.PodSandboxId = sandboxID
		return c
	}
	sandboxes := func() []*runtimeapi.PodSandbox {
		return []*runtimeapi.PodSandbox{
			// A live pod: its newest sandbox stays even if dead; older dead
			// ones go unless they hold a container or are ready.
			sandbox("live-newest", "live", 0, false),
			sandbox("live-dead", "live", time.Minute, false),
			sandbox("live-holding", "live", 2*time.Minute, false),
			sandbox("live-ready", "live", 3*time.Minute, true),
			sandbox("live-dead-too", "live", 4*time.Minute, false),
			// A deleted pod: every dead sandbox goes, its newest too.
			sandbox("gone-newest", "gone", 0, false),
			sandbox("gone-older", "gone", time.Minute, false),
			sandbox("gone-holding", "gone", 2*time.Minute, false),
			// A lone dead sandbox of a live pod is its newest.
			sandbox("solo", "solo", 0, false),
		}
	}
	for _, tc := range []struct {
		name            string
		allSourcesReady bool
		want            []string
	}{
		{"all sources ready", true, []string{"gone-holding", "live-holding", "live-newest", "live-ready", "solo"}},
		{"sources not ready: deleted pods keep their newest", false, []string{"gone-holding", "gone-newest", "live-holding", "live-newest", "live-ready", "solo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newContainerHarness(t, ContainerOptions{})
			h.rt.sandboxes = sandboxes()
			h.rt.setContainers(holding("live-holding"), holding("gone-holding"))
			if err := h.gc.GarbageCollect(context.Background(), tc.allSourcesReady, false); err != nil {
				t.Fatalf("GarbageCollect: %v", err)
			}
			if got := h.rt.sandboxIDs(); !slices.Equal(got, tc.want) {
				t.Fatalf("sandboxes left = %v, want %v", got, tc.want)
			}
			// Each removed sandbox was stopped first.
			calls := h.rt.Calls("StopPodSandbox", "RemovePodSandbox")
			for i, c := range calls {
				if id, ok := strings.CutPrefix(c, "RemovePodSandbox "); ok && (i == 0 || calls[i-1] != "StopPodSandbox "+id) {
					t.Errorf("sandbox %s removed without being stopped first: %v", id, calls)
				}
			}
		})
	}
}

// Dead containers of a deleted pod go first, then its sandbox, in one pass.
func TestContainerGCDeletedPodInOnePass(t *testing.T) {
	h := newContainerHarness(t, ContainerOptions{})
	c := podContainer("c", "gone", "app", time.Unix(0, 0), exited)
	c.PodSandboxId = "sb"
	h.rt.setContainers(c)
	h.rt.sandboxes = []*runtimeapi.PodSandbox{{Id: "sb", State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY, Labels: map[string]string{kubetypes.KubernetesPodUIDLabel: "gone"}}}
	if err := h.gc.GarbageCollect(context.Background(), true, false); err != nil {
		t.Fatalf("GarbageCollect: %v", err)
	}
	if len(h.rt.containerIDs()) != 0 || len(h.rt.sandboxIDs()) != 0 {
		t.Fatalf("left: containers %v, sandboxes %v", h.rt.containerIDs(), h.rt.sandboxIDs())
	}
}

func TestContainerGCLogDirectories(t *testing.T) {
	for _, tc := range []struct {
		name            string
		allSourcesReady bool
		want            []string
	}{
		{"all sources ready", true, []string{"default_keep-file_gone", "default_web_live", "kube-system_my_pod_name_live2", "unknown"}},
		{"sources not ready", false, []string{"default_api_gone", "default_keep-file_gone", "default_web_live", "kube-system_my_pod_name_live2", "old-layout", "unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := t.TempDir()
			for _, d := range []string{"default_web_live/app", "default_api_gone/app", "kube-system_my_pod_name_live2", "old-layout", "unknown"} {
				if err := os.MkdirAll(filepath.Join(logs, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(logs, "default_api_gone/app/0.log"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(logs, "default_keep-file_gone"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			pods := podStates{deleted: map[types.UID]bool{"gone": true, "old-layout": true}}
			h := newContainerHarness(t, ContainerOptions{PodLogsDir: logs, PodDeleted: pods.podDeleted})
			if err := h.gc.GarbageCollect(context.Background(), tc.allSourcesReady, false); err != nil {
				t.Fatalf("GarbageCollect: %v", err)
			}
			entries, _ := os.ReadDir(logs)
			var got []string
			for _, e := range entries {
				got = append(got, e.Name())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("left in the pod logs directory: %v, want %v", got, tc.want)
			}
		})
	}

	// A missing pod logs directory is nothing to clean up.
	h := newContainerHarness(t, ContainerOptions{PodLogsDir: filepath.Join(t.TempDir(), "missing")})
	if err := h.gc.GarbageCollect(context.Background(), true, false); err != nil {
		t.Fatalf("GarbageCollect with no pod logs directory: %v", err)
	}
}

// Run collects at once and every Period, asking SourcesReady each time, and
// reports failures as ContainerGCFailed.
func TestContainerGCRun(t *testing.T) {
	asked := make(chan struct{})
	failed := make(chan string, 4)
	h := newContainerHarness(t, ContainerOptions{
		SourcesReady: func() bool { asked <- struct{}{}; return true },
		Recorder:     func(reason, _ string) { failed <- reason },
	})
	now := h.clock.Now()
	h.rt.setContainers(
		podContainer("a1", "foo", "app", now.Add(-2*time.Second), exited),
		podContainer("a2", "foo", "app", now.Add(-time.Second), exited),
	)
	h.rt.failRemove = map[string]error{"a1": errors.New("busy")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.gc.Run(ctx) }()

	<-asked // first collection, at the start: a1 fails to go
	if reason := <-failed; reason != ReasonContainerGCFailed {
		t.Fatalf("event reason = %q, want %q", reason, ReasonContainerGCFailed)
	}
	h.rt.mu.Lock()
	h.rt.failRemove = nil
	h.rt.mu.Unlock()
	h.clock.Step(DefaultContainerPeriod)
	<-asked // second collection, a period later
	cancel()
	<-done // the second collection is over
	if got, want := h.rt.containerIDs(), []string{"a2"}; !slices.Equal(got, want) {
		t.Fatalf("containers left = %v, want %v", got, want)
	}
	if len(failed) != 0 {
		t.Fatalf("the second collection failed too: %q", <-failed)
	}
}

// DeleteUnusedContainers removes the dead containers of terminated pods too,
// and asks SourcesReady.
func TestDeleteUnusedContainers(t *testing.T) {
	ready := false
	h := newContainerHarness(t, ContainerOptions{SourcesReady: func() bool { return ready }})
	old := time.Unix(0, 0)
	h.rt.setContainers(
		podContainer("t1", "terminated", "app", old, exited),
		podContainer("r1", "running", "app", old, exited),
		podContainer("r2", "running", "app", old.Add(time.Second), exited),
	)
	if err := h.gc.DeleteUnusedContainers(context.Background()); err != nil {
		t.Fatalf("DeleteUnusedContainers: %v", err)
	}
	if got, want := h.rt.containerIDs(), []string{"r2", "t1"}; !slices.Equal(got, want) {
		t.Fatalf("sources not ready: containers left = %v, want %v", got, want)
	}
	ready = true
	if err := h.gc.DeleteUnusedContainers(context.Background()); err != nil {
		t.Fatalf("DeleteUnusedContainers: %v", err)
	}
	if got, want := h.rt.containerIDs(), []string{"r2"}; !slices.Equal(got, want) {
		t.Fatalf("containers left = %v, want %v", got, want)
	}
}
