package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	kubetypes "k8s.io/kubelet/pkg/types"
	utilexec "k8s.io/utils/exec"
	"sigs.k8s.io/yaml"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/agent/podsource"
	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testnet"
	"github.com/nodekit-dev/nodekit/internal/testshim"
	"github.com/nodekit-dev/nodekit/pleg"
)

// The end-to-end tests run the agent on nodekit's real CRI shim (in this
// process, served on a unix socket and reached through k8s.io/cri-client as
// nodekit-kubelet does), with real runc, a real CNI network of the test's own
// and per-test directories and cgroup root, so tests can run in parallel. Every
// test ends by checking that nothing is left: no sandbox or container in the
// runtime, no mount under its directories, no monitor process, no pod cgroup,
// no CNI address, interface or NAT rule.

const (
	busybox  = "nodekit.local/busybox:latest"
	nodeName = "node-e2e"
)

// harness is one test's shim and agent.
type harness struct {
	shim       *testshim.Shim // the in-process shim (newShim)
	t          *testing.T
	base       string
	shimRoot   string
	shimState  string
	sock       string
	cgroupRoot string
	net        *testnet.Network
	logs       *testenv.LogBuffer
	// checkState is the directory whose monitors and runc state must be gone
	// at the end: the shim's state, or base when no nodekit shim runs.
	checkState string
	// dumps are printed when the test failed (or NODEKIT_E2E_LOG is set).
	dumps []dump

	conn   *grpc.ClientConn // the test's own connection: container events
	rt     internalapi.RuntimeService
	img    internalapi.ImageManagerService
	events *eventRecorder

	// The agent's directories. hostDir is mounted into the test pods at /host;
	// objects holds the ConfigMap and Secret manifests pods may reference.
	rootDir, manifests, podLogs, hostDir, objects string

	agent    *agent.Agent
	registry *prometheus.Registry
	cancel   context.CancelFunc
	done     chan error
}

// dump is a log printed when the test failed.
type dump struct {
	title string
	text  func() string
}

type harnessOptions struct {
	// server runs the kubelet API (127.0.0.1, free port, local socket).
	server bool
	// config adjusts the KubeletConfiguration before the agent starts.
	config func(*kubeletconfig.KubeletConfiguration)
	// sources are pod sources besides the manifest directory.
	sources []podsource.Source
	// parent holds the test's directories (default: the temp dir).
	parent string
	// beforeAgent runs once the shim serves, before the agent is made.
	beforeAgent func(*harness)
	// kubeconfig joins the agent to an API server (cluster mode).
	kubeconfig string
	// bootstrapKubeconfig requests the node's client certificate when
	// kubeconfig does not exist or cannot be used; certDir keeps it
	// (default <root>/pki).
	bootstrapKubeconfig, certDir string
	// newErr receives agent.New's error, instead of the test failing, and
	// the agent is not started.
	newErr func(error)
	// nodeIP is the node's address (default 127.0.0.1; the apiserver's node
	// proxy refuses loopback addresses).
	nodeIP string
}

// newHarness starts a shim and an agent for the test. The cleanups stop the
// agent (which stops every pod: StopPodsOnExit), check that the runtime holds
// nothing of it any more, stop the shim and check the node for leaks.
func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	h := newShimIn(t, o.parent)
	if o.beforeAgent != nil {
		o.beforeAgent(h)
	}
	h.startAgent(o)
	return h
}

// quietKlog silences k8s.io/cri-client's klog output (a canceled event stream
// at every agent stop is logged as an error).
var quietKlog sync.Once

// prepare makes the test's directories (under a new base named prefix...), its
// cgroup root and its CNI network, and registers the checks that run after
// every other cleanup of the test: the network's, then the node's
// (assertNodeClean), then the logs of a failed test.
func prepare(t *testing.T, prefix string) *harness { return prepareIn(t, "", prefix) }

// prepareIn is prepare with the base made in parent ("": the temp dir).
func prepareIn(t *testing.T, parent, prefix string) *harness {
	t.Helper()
	// Short paths: unix socket names are limited to 108 bytes.
	var base string
	if parent == "" {
		base = testenv.TempDir(t, prefix)
	} else {
		var err error
		if base, err = os.MkdirTemp(parent, prefix); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(base) })
	}
	var b [4]byte
	rand.Read(b[:])
	h := &harness{
		t:          t,
		base:       base,
		shimRoot:   filepath.Join(base, "shim"),
		shimState:  filepath.Join(base, "state"),
		sock:       filepath.Join(base, "cri.sock"),
		cgroupRoot: "/nodekit-agent-test-" + hex.EncodeToString(b[:]),
		logs:       &testenv.LogBuffer{},
		rootDir:    filepath.Join(base, "root"),
		manifests:  filepath.Join(base, "manifests"),
		podLogs:    filepath.Join(base, "logs"),
		hostDir:    filepath.Join(base, "host"),
		objects:    filepath.Join(base, "objects"),
	}
	h.checkState = h.shimState
	for _, d := range []string{h.manifests, h.hostDir, h.objects} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(h.hostDir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("NODEKIT_E2E_LOG") != "" {
			for _, d := range h.dumps {
				t.Logf("%s:\n%s", d.title, d.text())
			}
		}
	})
	t.Cleanup(h.assertNodeClean)
	h.net = testnet.New(t, "nka", "10.128.0.0/10")
	return h
}

// newShimIn prepares the test's directories (in parent; "" for the temp dir),
// network and cgroup root and starts the shim with the busybox image.
func newShimIn(t *testing.T, parent string) *harness {
	t.Helper()
	testenv.RequireRoot(t)
	quietKlog.Do(func() { klog.SetSlogLogger(slog.New(slog.DiscardHandler)) })
	h := prepareIn(t, parent, "nkae-")
	h.dumps = append(h.dumps, dump{"shim and agent log", h.logs.String})
	s := testshim.Start(t, testshim.Options{
		Dir:          h.base,
		Root:         h.shimRoot,
		State:        h.shimState,
		Socket:       h.sock,
		CgroupParent: h.cgroupRoot + "/shim",
		CNIConfDir:   h.net.ConfDir,
		CNIBinDirs:   testnet.BinDirs,
		Logger:       slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "shim"),
		Images:       []string{"busybox"},
	})
	h.rt, h.img, h.shim = s.Runtime, s.Images, s
	var err error
	h.conn, err = grpc.NewClient("unix://"+h.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.conn.Close() })
	h.events = recordEvents(t, runtimeapi.NewRuntimeServiceClient(h.conn))
	return h
}

// startAgent starts the agent on the shim.
func (h *harness) startAgent(o harnessOptions) {
	t := h.t
	t.Helper()
	cfg, err := agent.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.RootDir = h.rootDir
	cfg.NodeName = nodeName
	cfg.NodeIP = "127.0.0.1"
	if o.nodeIP != "" {
		cfg.NodeIP = o.nodeIP
	}
	cfg.ObjectManifestPath = h.objects
	cfg.Kubeconfig = o.kubeconfig
	cfg.BootstrapKubeconfig = o.bootstrapKubeconfig
	cfg.CertDir = o.certDir
	k := &cfg.Kubelet
	k.StaticPodPath = h.manifests
	k.PodLogsDir = h.podLogs
	k.CgroupRoot = h.cgroupRoot
	k.Address = "127.0.0.1"
	k.Port = 0 // a free port
	off := int32(0)
	k.HealthzPort = &off
	if o.config != nil {
		o.config(k)
	}
	h.registry = prometheus.NewRegistry()
	h.agent, err = agent.New(agent.Options{
		Config:         cfg,
		Runtime:        h.rt,
		Images:         h.img,
		Logger:         slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "agent"),
		Registry:       h.registry,
		StopPodsOnExit: true,
		DisableServer:  !o.server,
		Sources:        o.sources,
	})
	if err != nil && o.newErr != nil {
		o.newErr(err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.agent.Run(ctx) }()
	t.Cleanup(h.stopAgent)
}

// stopAgent stops the agent (and with it every pod) and checks that the
// runtime and the agent's directories hold nothing of them any more.
func (h *harness) stopAgent() {
	t := h.t
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("agent Run: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Errorf("the agent did not stop within 3 minutes")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if sbs, err := h.rt.ListPodSandbox(ctx, nil); err != nil || len(sbs) > 0 {
		t.Errorf("sandboxes left in the runtime after the agent stopped: %d (%v)", len(sbs), err)
	}
	if cs, err := h.rt.ListContainers(ctx, nil); err != nil || len(cs) > 0 {
		t.Errorf("containers left in the runtime after the agent stopped: %d (%v)", len(cs), err)
	}
	for _, d := range []string{filepath.Join(h.rootDir, "pods"), h.podLogs} {
		if entries, _ := os.ReadDir(d); len(entries) > 0 {
			t.Errorf("pod directories left in %s: %v", d, names(entries))
		}
	}
}

func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// assertNodeClean checks that nothing the runtime made is left on the node:
// mounts under base, monitor processes and runc state of checkState, cgroups
// under cgroupRoot other than the kubepods hierarchy itself. It removes what it
// finds. (The test network checks its addresses, interfaces and NAT rules
// itself, see testnet.)
func (h *harness) assertNodeClean() {
	t := h.t
	leakcheck.NoMounts(t, h.base)
	leakcheck.NoMonitors(t, h.checkState)
	leakcheck.NoRuncState(t, h.checkState)
	// The QoS hierarchy (kubepods, kubepods/besteffort...) may stay, as the
	// kubelet keeps it; pod and container cgroups may not.
	leakcheck.NoCgroups(t, h.cgroupRoot, "kubepods", "kubepods/besteffort", "kubepods/burstable", "shim")
	leakcheck.RemoveCgroups(t, h.cgroupRoot)
}

// --- manifests and pods -------------------------------------------------------

// writeObjects writes manifests (ConfigMaps, Secrets: YAML documents) as
// <name>.yaml into the object directory, atomically.
func (h *harness) writeObjects(name, manifests string) {
	h.t.Helper()
	tmp := filepath.Join(h.objects, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(manifests), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.objects, name+".yaml")); err != nil {
		h.t.Fatal(err)
	}
}

// exec runs cmd in a container of the pod (by its status) and returns its
// output (stdout and stderr) and exit code.
func (h *harness) exec(p *v1.Pod, container string, cmd ...string) (string, int32) {
	h.t.Helper()
	cs := containerStatus(p, container)
	if cs == nil || cs.ContainerID == "" {
		h.t.Fatalf("exec: pod %s has no container %s", p.Name, container)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stdout, stderr, err := h.rt.ExecSync(ctx, criID(cs.ContainerID), cmd, 20*time.Second)
	if err != nil {
		var exit utilexec.ExitError
		if errors.As(err, &exit) {
			return string(stdout) + string(stderr), int32(exit.ExitStatus())
		}
		h.t.Fatalf("exec %v in %s/%s: %v", cmd, p.Name, container, err)
	}
	return string(stdout) + string(stderr), 0
}

// writeManifest writes pod as <name>.yaml into the manifest directory,
// atomically (the source ignores hidden files).
func (h *harness) writeManifest(pod *v1.Pod) {
	h.t.Helper()
	writeManifest(h.t, h.manifests, pod)
}

func writeManifest(t *testing.T, dir string, pod *v1.Pod) {
	t.Helper()
	data, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+pod.Name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, pod.Name+".yaml")); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) removeManifest(name string) {
	h.t.Helper()
	if err := os.Remove(filepath.Join(h.manifests, name+".yaml")); err != nil {
		h.t.Fatal(err)
	}
}

// pod returns the agent's pod of manifest name (nil when it has none).
func (h *harness) pod(name string) *v1.Pod {
	for _, p := range h.agent.Pods() {
		if p.Name == name+"-"+nodeName || p.Name == name { // a static pod, or one given in code
			return p
		}
	}
	return nil
}

// waitPod polls the agent's pod of manifest name until cond holds.
func (h *harness) waitPod(name, what string, within time.Duration, cond func(*v1.Pod) bool) *v1.Pod {
	h.t.Helper()
	var p *v1.Pod
	deadline := time.Now().Add(within)
	for {
		if p = h.pod(name); p != nil && cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("pod %s: timed out after %s waiting for %s; last status:\n%s", name, within, what, describe(p))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runtimePod returns what the runtime holds of pod uid.
func (h *harness) runtimePod(uid types.UID) *pleg.PodStatus {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := pleg.Inspect(ctx, h.rt, uid)
	if err != nil {
		h.t.Fatal(err)
	}
	return rs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describe(p *v1.Pod) string {
	if p == nil {
		return "<no pod>"
	}
	data, _ := yaml.Marshal(p.Status)
	return string(data)
}

// containerStatus returns the status of the pod's (init or app) container name.
func containerStatus(p *v1.Pod, name string) *v1.ContainerStatus {
	for _, list := range [][]v1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func condition(p *v1.Pod, t v1.PodConditionType) v1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func running(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning }

// ready: phase Running and the Ready condition true.
func ready(p *v1.Pod) bool { return running(p) && condition(p, v1.PodReady) == v1.ConditionTrue }

// testPod is a pod of busybox containers with the test's host directory at
// /host and a short grace period.
func (h *harness) testPod(name string, containers ...v1.Container) *v1.Pod {
	grace := int64(5)
	p := &v1.Pod{
		Spec: v1.PodSpec{
			Containers:                    containers,
			TerminationGracePeriodSeconds: &grace,
			Volumes: []v1.Volume{{Name: "host", VolumeSource: v1.VolumeSource{
				HostPath: &v1.HostPathVolumeSource{Path: h.hostDir},
			}}},
		},
	}
	p.APIVersion, p.Kind = "v1", "Pod"
	p.Name = name
	return p
}

// shell is a busybox container running script with /host mounted and rec, a
// function that appends "<what> <uptime>" to /host/events, defined.
func shell(name, script string) v1.Container {
	return v1.Container{
		Name:            name,
		Image:           busybox,
		ImagePullPolicy: v1.PullIfNotPresent,
		Command:         []string{"sh", "-c", recFunc + script},
		VolumeMounts:    []v1.VolumeMount{{Name: "host", MountPath: "/host"}},
	}
}

// recFunc records an event with the time since boot (/proc/uptime is the
// node's: the same clock in every container and in the test).
const recFunc = `rec() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >> /host/events; }; `

// idle waits forever in a way a trap interrupts at once.
const idle = `while true; do sleep 1 & wait $!; done`

// event is a line of /host/events.
type event struct {
	what string
	at   float64 // seconds since boot
}

func (h *harness) hostEvents() []event { return readEvents(h.t, filepath.Join(h.hostDir, "events")) }

// waitEvents polls /host/events until it holds the events named (a container
// is Running before its shell wrote its first line).
func (h *harness) waitEvents(names ...string) []event {
	h.t.Helper()
	var evs []event
	waitFor(h.t, fmt.Sprintf("events %v", names), 30*time.Second, func() bool {
		evs = h.hostEvents()
		for _, n := range names {
			if index(evs, n) < 0 {
				return false
			}
		}
		return true
	})
	return evs
}

func readEvents(t *testing.T, path string) []event {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []event
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		at, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			t.Fatalf("events line %q: %v", l, err)
		}
		out = append(out, event{f[0], at})
	}
	return out
}

// whats lists the events' names in order.
func whats(evs []event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.what)
	}
	return out
}

// index returns the position of the first event called what, or -1.
func index(evs []event, what string) int {
	return slices.IndexFunc(evs, func(e event) bool { return e.what == what })
}

// uptime returns the node's time since boot, the clock of rec.
func uptime(t *testing.T) float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// --- container events ---------------------------------------------------------

// eventRecorder follows the shim's container events and keeps the last status
// seen of every container, even after the container is removed: exits and
// their times are known however soon the agent removes the container.
type eventRecorder struct {
	mu   sync.Mutex
	last map[string]*runtimeapi.ContainerStatus
}

func recordEvents(t *testing.T, rt runtimeapi.RuntimeServiceClient) *eventRecorder {
	t.Helper()
	r := &eventRecorder{last: map[string]*runtimeapi.ContainerStatus{}}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil { // subscribed
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			r.mu.Lock()
			for _, s := range ev.GetContainersStatuses() {
				r.last[s.GetId()] = s
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// instances returns the last known status of every container called name of
// pod uid, oldest first.
func (r *eventRecorder) instances(uid types.UID, name string) []*runtimeapi.ContainerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtimeapi.ContainerStatus
	for _, s := range r.last {
		if s.GetLabels()[kubetypes.KubernetesPodUIDLabel] == string(uid) && s.GetMetadata().GetName() == name {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetCreatedAt() < out[j].GetCreatedAt() })
	return out
}

// newest returns the newest instance of container name of pod uid (nil if none).
func (r *eventRecorder) newest(uid types.UID, name string) *runtimeapi.ContainerStatus {
	in := r.instances(uid, name)
	if len(in) == 0 {
		return nil
	}
	return in[len(in)-1]
}

// exited returns the last status of container id once it is known to have
// exited (nil until then).
func (r *eventRecorder) exited(id string) *runtimeapi.ContainerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.last[id]; s != nil && s.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
		return s
	}
	return nil
}

// criID strips the runtime name from a v1.ContainerStatus container ID.
func criID(id string) string {
	_, after, ok := strings.Cut(id, "://")
	if !ok {
		return id
	}
	return after
}
