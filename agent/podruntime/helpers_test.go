package podruntime

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	kubetypes "k8s.io/kubelet/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodekit-dev/nodekit/pleg"
)

// fakeRuntime wraps the CRI fake to record what the manager asked for.
type fakeRuntime struct {
	*critest.FakeRuntimeService

	mu       sync.Mutex
	configs  map[string]*runtimeapi.ContainerConfig // by container ID
	created  []string
	sandbox  []*runtimeapi.PodSandboxConfig
	stops    []stopCall
	execs    [][]string
	execHook func(ctx context.Context, id string, cmd []string) error
	execOut  []byte // what commands that succeed print
}

type stopCall struct {
	id, name string
	timeout  int64
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{FakeRuntimeService: critest.NewFakeRuntimeService(), configs: map[string]*runtimeapi.ContainerConfig{}}
}

func (r *fakeRuntime) RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	r.mu.Lock()
	r.sandbox = append(r.sandbox, cfg)
	r.mu.Unlock()
	return r.FakeRuntimeService.RunPodSandbox(ctx, cfg, handler)
}

func (r *fakeRuntime) CreateContainer(ctx context.Context, sb string, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig) (string, error) {
	id, err := r.FakeRuntimeService.CreateContainer(ctx, sb, cfg, sbCfg)
	if err == nil {
		r.mu.Lock()
		r.configs[id] = cfg
		r.created = append(r.created, cfg.Metadata.Name+"#"+strconv.Itoa(int(cfg.Metadata.Attempt)))
		r.mu.Unlock()
		// The fake forgets mounts and log path; keep them for the status.
		r.Lock()
		c := r.Containers[id]
		c.Mounts = cfg.Mounts
		c.LogPath = filepath.Join(sbCfg.GetLogDirectory(), cfg.GetLogPath())
		r.Unlock()
	}
	return id, err
}

func (r *fakeRuntime) StopContainer(ctx context.Context, id string, timeout int64) error {
	r.mu.Lock()
	name := ""
	if cfg := r.configs[id]; cfg != nil {
		name = cfg.Metadata.Name
	}
	r.stops = append(r.stops, stopCall{id: id, name: name, timeout: timeout})
	r.mu.Unlock()
	return r.FakeRuntimeService.StopContainer(ctx, id, timeout)
}

func (r *fakeRuntime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	r.mu.Lock()
	r.execs = append(r.execs, cmd)
	hook, out := r.execHook, r.execOut
	r.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, id, cmd); err != nil {
			return nil, nil, err
		}
	}
	stdout, stderr, err := r.FakeRuntimeService.ExecSync(ctx, id, cmd, timeout)
	if err == nil {
		stdout = out
	}
	return stdout, stderr, err
}

func (r *fakeRuntime) stopCalls() []stopCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.stops)
}

// exit makes a fake container exit with code at time t.
func (r *fakeRuntime) exit(t *testing.T, id string, code int32, at time.Time) {
	t.Helper()
	r.Lock()
	defer r.Unlock()
	c, ok := r.Containers[id]
	if !ok {
		t.Fatalf("no container %s", id)
	}
	c.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.ExitCode = code
	c.FinishedAt = at.UnixNano()
}

// containerIDs returns the IDs of the pod's containers called name, oldest first.
func (r *fakeRuntime) containerIDs(name string) []string {
	r.Lock()
	defer r.Unlock()
	var cs []*critest.FakeContainer
	for _, c := range r.Containers {
		if c.Metadata.Name == name {
			cs = append(cs, c)
		}
	}
	slices.SortFunc(cs, func(a, b *critest.FakeContainer) int { return int(a.Metadata.Attempt) - int(b.Metadata.Attempt) })
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.Id)
	}
	return ids
}

// inspect builds the pod's runtime status from the fake, as a PLEG would.
func inspect(r *fakeRuntime, uid types.UID) *pleg.PodStatus {
	r.Lock()
	defer r.Unlock()
	ps := &pleg.PodStatus{ID: uid}
	for _, s := range r.Sandboxes {
		if s.Metadata.Uid == string(uid) {
			ps.SandboxStatuses = append(ps.SandboxStatuses, proto.Clone(&s.PodSandboxStatus).(*runtimeapi.PodSandboxStatus))
		}
	}
	slices.SortFunc(ps.SandboxStatuses, func(a, b *runtimeapi.PodSandboxStatus) int {
		return int(b.Metadata.Attempt) - int(a.Metadata.Attempt)
	})
	if len(ps.SandboxStatuses) > 0 && ps.SandboxStatuses[0].State == runtimeapi.PodSandboxState_SANDBOX_READY {
		ps.IPs = sandboxIPs(ps.SandboxStatuses[0])
	}
	for _, c := range r.Containers {
		if c.Labels[kubetypes.KubernetesPodUIDLabel] == string(uid) {
			ps.ContainerStatuses = append(ps.ContainerStatuses, proto.Clone(&c.ContainerStatus).(*runtimeapi.ContainerStatus))
		}
	}
	slices.SortFunc(ps.ContainerStatuses, func(a, b *runtimeapi.ContainerStatus) int {
		if a.CreatedAt != b.CreatedAt {
			return cmpInt64(b.CreatedAt, a.CreatedAt)
		}
		return int(b.Metadata.Attempt) - int(a.Metadata.Attempt)
	})
	return ps
}

type env struct {
	t     *testing.T
	rt    *fakeRuntime
	img   *critest.FakeImageService
	clock *clocktesting.FakeClock
	m     *Manager
	root  string
	logs  string
	probe map[string]ProbeResult // kind/id
	mu    sync.Mutex
}

func newEnv(t *testing.T, mutate ...func(*Options)) *env {
	t.Helper()
	e := &env{
		t: t, rt: newFakeRuntime(), img: critest.NewFakeImageService(),
		clock: clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)),
		root:  t.TempDir(), logs: t.TempDir(), probe: map[string]ProbeResult{},
	}
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 10.0.0.2\nsearch example.com\noptions ndots:2 timeout:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{
		Runtime: e.rt, Images: e.img, RuntimeName: "fake",
		RootDir: e.root, PodLogsDir: e.logs,
		CgroupRoot:     testCgroupRoot,
		MemoryCapacity: 4 << 30,
		NodeAllocatable: v1.ResourceList{
			v1.ResourceCPU:    resource.MustParse("4"),
			v1.ResourceMemory: resource.MustParse("4Gi"),
		},
		NodeName: "node1", HostIPs: []string{"10.1.1.1", "fd00::1"},
		ResolvConf: resolv,
		Clock:      e.clock,
		Probes: func(k ProbeKind, id string) ProbeResult {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.probe[probeKey(k, id)]
		},
	}
	for _, f := range mutate {
		f(&o)
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

// testCgroupRoot keeps RemovePod's cgroup cleanup away from anything real.
const testCgroupRoot = "/nodekit-podruntime-test"

func probeKey(k ProbeKind, id string) string {
	if k == LivenessProbe {
		return "liveness/" + id
	}
	return "startup/" + id
}

func (e *env) setProbe(k ProbeKind, id string, r ProbeResult) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.probe[probeKey(k, id)] = r
}

// sync runs SyncPod on the pod's current fake status.
func (e *env) sync(pod *v1.Pod) Result {
	e.t.Helper()
	return e.m.SyncPod(context.Background(), pod, inspect(e.rt, pod.UID), nil)
}

// newPod returns a pod with the given app containers (name=image busybox).
func newPod(name string, containers ...string) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec:       v1.PodSpec{RestartPolicy: v1.RestartPolicyAlways},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{
			Name: c, Image: "busybox", ImagePullPolicy: v1.PullIfNotPresent,
			TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: v1.TerminationMessageReadFile,
		})
	}
	return p
}

func initC(name string, sidecar bool) v1.Container {
	c := v1.Container{Name: name, Image: "busybox", ImagePullPolicy: v1.PullIfNotPresent}
	if sidecar {
		always := v1.ContainerRestartPolicyAlways
		c.RestartPolicy = &always
	}
	return c
}

// created lists "<name>#<attempt>" of every container created, in order.
func (r *fakeRuntime) createdList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.created)
}
