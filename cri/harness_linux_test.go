package cri_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri"
	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testnet"
)

// harness is a shim under test: either in this process (start) or as the real
// nodekit-cri binary (see crash_linux_test.go), always reached over a real gRPC
// unix socket.
type harness struct {
	t            *testing.T
	root, state  string
	sock         string
	cgroupParent string
	runc         string
	monitor      string
	srv          *cri.Server
	grpc         *grpc.Server
	conn         *grpc.ClientConn
	rt           runtime.RuntimeServiceClient
	img          runtime.ImageServiceClient
	logs         *testenv.LogBuffer
	net          *testnet.Network // the test's own CNI network
}

// newHarness prepares directories, binaries and the test's CNI network, and
// registers the leak checks, which run after every other cleanup of the test.
func newHarness(t *testing.T) *harness {
	t.Helper()
	testenv.RequireRoot(t)
	h := &harness{
		t:       t,
		runc:    testenv.Binary(t, "runc"),
		monitor: testenv.Binary(t, "nodekit-monitor"),
		logs:    &testenv.LogBuffer{},
	}
	base := testenv.TempDir(t, "nkcri-")
	h.root, h.state = filepath.Join(base, "root"), filepath.Join(base, "state")
	h.sock = filepath.Join(base, "cri.sock")
	var b [4]byte
	rand.Read(b[:])
	h.cgroupParent = "/nodekit-test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", h.logs.String())
		}
	})
	t.Cleanup(h.assertNoLeaks)
	// The network checks and removes itself before the checks above.
	h.net = testnet.New(t, "nk", "10.64.0.0/10")
	return h
}

func (h *harness) options() cri.Options {
	return cri.Options{
		Root:         h.root,
		State:        h.state,
		Runtime:      h.runc,
		Monitor:      h.monitor,
		CgroupParent: h.cgroupParent,
		CNIConfDir:   h.net.ConfDir,
		CNIBinDirs:   testnet.BinDirs,
		Logger:       slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// start runs the server in this process and connects a client to it.
func (h *harness) start() { h.startWith(nil) }

// startWith is start with options adjusted by adjust.
func (h *harness) startWith(adjust func(*cri.Options)) {
	h.t.Helper()
	opts := h.options()
	if adjust != nil {
		adjust(&opts)
	}
	srv, err := cri.New(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	l, err := cri.Listen(h.sock)
	if err != nil {
		srv.Close()
		h.t.Fatal(err)
	}
	h.srv = srv
	h.grpc = grpc.NewServer()
	srv.Register(h.grpc)
	go func() { _ = h.grpc.Serve(l) }() // nil after Stop; before, the calls fail
	h.connect()
	h.t.Cleanup(h.stopServer)
}

func (h *harness) stopServer() {
	if h.conn != nil {
		h.conn.Close()
		h.conn = nil
	}
	if h.grpc != nil {
		h.grpc.Stop()
		h.grpc = nil
	}
	if h.srv != nil {
		h.srv.Close()
		h.srv = nil
	}
}

func (h *harness) connect() {
	h.t.Helper()
	conn, err := grpc.NewClient("unix://"+h.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.conn = conn
	h.rt = runtime.NewRuntimeServiceClient(conn)
	h.img = runtime.NewImageServiceClient(conn)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// importImage loads a sample image archive (from `make images`) into the store.
func (h *harness) importImage(name string) {
	h.t.Helper()
	f, err := os.Open(testenv.Image(h.t, name))
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	if _, err := h.srv.Images().Import(ctx(h.t), f); err != nil {
		h.t.Fatal(err)
	}
}

func podConfig(name string) *runtime.PodSandboxConfig {
	return &runtime.PodSandboxConfig{
		Metadata: &runtime.PodSandboxMetadata{Name: name, Namespace: "test", Uid: name + "-uid"},
		Hostname: name,
		Labels:   map[string]string{"pod": name},
		Linux: &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
		}},
	}
}

func containerConfig(name, image string, cmd ...string) *runtime.ContainerConfig {
	return &runtime.ContainerConfig{
		Metadata: &runtime.ContainerMetadata{Name: name},
		Image:    &runtime.ImageSpec{Image: image},
		Command:  cmd,
		LogPath:  name + ".log",
		Labels:   map[string]string{"container": name},
		Linux: &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{
			NamespaceOptions: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
		}},
	}
}

// runPod creates a pod whose logs go under a temp dir; it is removed at cleanup.
func (h *harness) runPod(name string) (string, *runtime.PodSandboxConfig) {
	h.t.Helper()
	cfg := podConfig(name)
	return h.runPodConfig(cfg), cfg
}

// runPodConfig is runPod with a configuration of the test's own.
func (h *harness) runPodConfig(cfg *runtime.PodSandboxConfig) string {
	h.t.Helper()
	cfg.LogDirectory = filepath.Join(h.state, "..", "logs", cfg.Metadata.Name)
	resp, err := h.rt.RunPodSandbox(ctx(h.t), &runtime.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		h.t.Fatal(err)
	}
	id := resp.PodSandboxId
	h.t.Cleanup(func() {
		if h.rt == nil || h.conn == nil {
			return
		}
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Best effort: the leak checks report what is left.
		_, _ = h.rt.StopPodSandbox(c, &runtime.StopPodSandboxRequest{PodSandboxId: id})
		_, _ = h.rt.RemovePodSandbox(c, &runtime.RemovePodSandboxRequest{PodSandboxId: id})
	})
	return id
}

func (h *harness) createContainer(pod string, podCfg *runtime.PodSandboxConfig, cfg *runtime.ContainerConfig) string {
	h.t.Helper()
	resp, err := h.rt.CreateContainer(ctx(h.t), &runtime.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.ContainerId
}

func (h *harness) startContainer(id string) {
	h.t.Helper()
	if _, err := h.rt.StartContainer(ctx(h.t), &runtime.StartContainerRequest{ContainerId: id}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) status(id string) *runtime.ContainerStatus {
	h.t.Helper()
	resp, err := h.rt.ContainerStatus(ctx(h.t), &runtime.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.Status
}

// waitState polls the container's status until it reaches want.
func (h *harness) waitState(id string, want runtime.ContainerState, within time.Duration) *runtime.ContainerStatus {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := h.status(id)
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("container %s is %v after %s, want %v", id[:12], st.State, within, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertNoLeaks checks that nothing the shim made is left on the node: mounts under
// its directories, monitor processes, runtime state, cgroups under its parent.
// (The test network checks its addresses, interfaces and NAT rules itself.)
func (h *harness) assertNoLeaks() {
	t := h.t
	leakcheck.NoMounts(t, filepath.Dir(h.root))
	leakcheck.NoMonitors(t, h.state)
	// Monitors that exited are reaped (the shim is their parent while it runs).
	waitFor(t, "exited children to be reaped", 10*time.Second, func() bool { return len(zombieChildren()) == 0 })
	leakcheck.NoRuncState(t, h.state)
	leakcheck.NoCgroups(t, h.cgroupParent)
	// The test's cgroup parent must go too: an empty directory that cannot be
	// removed means something still lives in it.
	leakcheck.CgroupRemovable(t, h.cgroupParent, 5*time.Second)
}

// cniFlags are the nodekit-cri flags that select the test network.
func (h *harness) cniFlags() []string {
	return []string{"--cni-conf-dir", h.net.ConfDir, "--cni-bin-dir", strings.Join(testnet.BinDirs, ":")}
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read container log: %v", err)
	}
	return string(data)
}

func touch(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// zombieChildren lists this process's children that exited and were not reaped.
func zombieChildren() []string {
	procs, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, p := range procs {
		data, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == self {
			out = append(out, p.Name()+s[strings.IndexByte(s, ' '):i+1])
		}
	}
	return out
}
