package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criclient "k8s.io/cri-client/pkg"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/agent/server"
	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testnet"
)

// process is a daemon of the test (nodekit-kubelet, nodekit-cri) run from bin/,
// possibly several times; each run logs to <base>/<name>-<run>.log.
type process struct {
	t      *testing.T
	name   string
	bin    string
	base   string
	args   []string
	ready  func() bool // the daemon serves
	cmd    *exec.Cmd
	exited chan struct{}
	runs   int
}

// start runs the daemon (with extra flags) and waits until it serves.
func (p *process) start(extra ...string) {
	t := p.t
	t.Helper()
	p.runs++
	logf, err := os.Create(filepath.Join(p.base, fmt.Sprintf("%s-%d.log", p.name, p.runs)))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(p.bin, append(append([]string{}, p.args...), extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(p.cmd, p.exited)
	waitFor(t, p.name+" to serve", time.Minute, func() bool {
		if !p.running() {
			t.Fatalf("%s exited: %v\n%s", p.name, p.cmd.ProcessState, p.log())
		}
		return p.ready()
	})
}

func (p *process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig and waits for the process to exit (SIGKILL after within).
func (p *process) signal(sig syscall.Signal, within time.Duration) error {
	if !p.running() {
		return nil
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return nil
	case <-time.After(within):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not exit within %s of %s", p.name, within, sig)
	}
}

// log returns every run's log.
func (p *process) log() string {
	var b strings.Builder
	for i := 1; i <= p.runs; i++ {
		data, _ := os.ReadFile(filepath.Join(p.base, fmt.Sprintf("%s-%d.log", p.name, i)))
		fmt.Fprintf(&b, "--- %s run %d ---\n%s", p.name, i, data)
	}
	return b.String()
}

// localPods lists the pods of the agent's local API (nil when it does not
// answer).
func localPods(rootDir string) []v1.Pod {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := server.ListPods(ctx, agent.LocalSocket(rootDir))
	if err != nil {
		return nil
	}
	return list.Items
}

func findPod(pods []v1.Pod, name string) *v1.Pod {
	for i := range pods {
		if pods[i].Name == name+"-"+nodeName {
			return &pods[i]
		}
	}
	return nil
}

// runtimeIDs lists the ids and states of the runtime's sandboxes and
// containers (by container name) of pod uid.
func runtimeIDs(t *testing.T, rt internalapi.RuntimeService, uid types.UID) (sandboxes []string, containers map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sel := map[string]string{kubetypes.KubernetesPodUIDLabel: string(uid)}
	sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sbs {
		sandboxes = append(sandboxes, s.GetId()+"/"+s.GetState().String())
	}
	cs, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	containers = map[string]string{}
	for _, c := range cs {
		containers[c.GetMetadata().GetName()] = c.GetId() + "/" + c.GetState().String()
	}
	return sandboxes, containers
}

// daemons are the test's bin/nodekit-cri and bin/nodekit-kubelet processes
// (not started), with the busybox image imported into the shim's store. The
// cleanup stops the kubelet (and, if containers are left, runs it once more
// with --stop-pods-on-exit and no manifests), then the shim, and checks that
// no pod directory is left.
type daemons struct {
	shim, kubelet *process
	kubeletBin    string
	rt            internalapi.RuntimeService // set once the shim served
}

func newDaemons(t *testing.T, h *harness, kubeletArgs ...string) *daemons {
	t.Helper()
	kubeletBin, criBin := testenv.Binary(t, "nodekit-kubelet"), testenv.Binary(t, "nodekit-cri")
	runc, monitor := testenv.Binary(t, "runc"), testenv.Binary(t, "nodekit-monitor")
	image := testenv.Image(t, "busybox")
	base := h.base

	d := &daemons{kubeletBin: kubeletBin}
	shim := &process{t: t, name: "nodekit-cri", bin: criBin, base: base, args: []string{
		"--listen", h.sock, "--root", h.shimRoot, "--state", h.shimState,
		"--runtime", runc, "--monitor", monitor, "--cgroup-parent", h.cgroupRoot + "/shim",
		"--cni-conf-dir", h.net.ConfDir, "--cni-bin-dir", strings.Join(testnet.BinDirs, ":"),
		"--registry-config", filepath.Join(base, "registries.toml"), "--log-level", "debug",
	}}
	shim.ready = func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + h.sock).
			WithConnectionTimeout(time.Minute).WithTracerProvider(nil).Build(ctx)
		if err != nil {
			return false
		}
		d.rt = c
		return true
	}
	config := filepath.Join(base, "kubelet.yaml")
	if err := os.WriteFile(config, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupRoot: "+h.cgroupRoot+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kubelet := &process{t: t, name: "nodekit-kubelet", bin: kubeletBin, base: base, args: append([]string{
		"--config", config, "--root-dir", h.rootDir, "--pod-manifest-path", h.manifests, "--pod-logs-dir", h.podLogs,
		"--container-runtime-endpoint", "unix://" + h.sock,
		"--hostname-override", nodeName, "--node-ip", "127.0.0.1",
		"--address", "127.0.0.1", "--port", "0", "--healthz-port", "0", "--log-level", "debug",
	}, kubeletArgs...)}
	kubelet.ready = func() bool { return localPods(h.rootDir) != nil }
	h.dumps = append(h.dumps, dump{"daemon logs", func() string { return shim.log() + "\n" + kubelet.log() }})
	t.Cleanup(func() {
		// Whatever happened: stop the kubelet and, if containers are left,
		// run it once more without manifests to stop them all; then the shim.
		if err := kubelet.signal(syscall.SIGTERM, 2*time.Minute); err != nil {
			t.Error(err)
		}
		if m := leakcheck.Monitors(t, h.shimState); len(m) > 0 {
			t.Errorf("containers left running after nodekit-kubelet stopped with --stop-pods-on-exit: %v", m)
			os.RemoveAll(h.manifests)
			if !shim.running() {
				shim.start()
			}
			kubelet.start("--stop-pods-on-exit")
			if err := kubelet.signal(syscall.SIGTERM, 2*time.Minute); err != nil {
				t.Error(err)
			}
		}
		if err := shim.signal(syscall.SIGTERM, time.Minute); err != nil {
			t.Error(err)
		}
		for _, dir := range []string{filepath.Join(h.rootDir, "pods"), h.podLogs} {
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("pod directories left in %s: %v", dir, names(entries))
			}
		}
		// Then the network's and the node's checks (prepare).
	})

	d.shim, d.kubelet = shim, kubelet
	out, err := exec.Command(criBin, "import", "--root", h.shimRoot, "--state", h.shimState, image).CombinedOutput()
	if err != nil {
		t.Fatalf("nodekit-cri import: %v\n%s", err, out)
	}
	return d
}

// TestE2ERestartAdoptsPods: the real daemons, bin/nodekit-kubelet on
// bin/nodekit-cri, are killed with SIGKILL and started again: the agent adopts
// its running pods (same sandbox, same containers, no restart, the pod Running
// and Ready again) and removes a pod whose manifest went while it was down.
// Then SIGTERM with --stop-pods-on-exit stops and removes everything.
//
// The shim runs as its own process, not embedded in nodekit-kubelet: the
// embedded shim keeps its state in /run/nodekit-kubelet/runtime whatever the
// --root-dir, which another nodekit-kubelet on the machine (`make run`, the
// agent benchmark) shares, and each agent removes the other's pods as
// orphans. With its own --state the test is isolated.
func TestE2ERestartAdoptsPods(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t)
	h := prepare(t, "nkar-")
	d := newDaemons(t, h)
	shim, kubelet, kubeletBin := d.shim, d.kubelet, d.kubeletBin
	app := shell("app", `trap 'exit 0' TERM; rec app-start; `+idle)
	app.ReadinessProbe = &v1.Probe{ProbeHandler: *execProbe("true"), PeriodSeconds: 1}
	helper := shell("helper", `trap 'exit 0' TERM; rec helper-start; `+idle)
	writeManifest(t, h.manifests, h.testPod("survivor", app, helper))
	writeManifest(t, h.manifests, h.testPod("goner", shell("main", `trap 'exit 0' TERM; `+idle)))

	shim.start()
	kubelet.start()
	var before, goner *v1.Pod
	waitFor(t, "both pods ready", time.Minute, func() bool {
		pods := localPods(h.rootDir)
		before, goner = findPod(pods, "survivor"), findPod(pods, "goner")
		return before != nil && goner != nil && ready(before) && ready(goner)
	})
	out, err := exec.Command(kubeletBin, "get", "pods", "--root-dir", h.rootDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "survivor-"+nodeName) || !strings.Contains(string(out), "2/2") {
		t.Errorf("nodekit-kubelet get pods: %v\n%s", err, out)
	}
	// The node as the standalone user sees it: Ready, no pressure, capacity and
	// allocatable (allocatable = capacity − the 100Mi hard eviction threshold).
	out, err = exec.Command(kubeletBin, "get", "node", "--root-dir", h.rootDir).CombinedOutput()
	for _, want := range []string{nodeName, "Ready", "MemoryPressure   False", "DiskPressure     False", "PIDPressure      False",
		"KubeletHasSufficientMemory", "RESOURCE", "CAPACITY", "ALLOCATABLE", "memory", "ephemeral-storage", "pods", "nodekit://"} {
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("nodekit-kubelet get node lacks %q: %v\n%s", want, err, out)
			break
		}
	}
	out, err = exec.Command(kubeletBin, "get", "node", "-o", "yaml", "--root-dir", h.rootDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kind: Node") || !strings.Contains(string(out), "allocatable:") {
		t.Errorf("nodekit-kubelet get node -o yaml: %v\n%s", err, out)
	}
	sandboxes, containers := runtimeIDs(t, d.rt, before.UID)
	if len(sandboxes) != 1 || len(containers) != 2 {
		t.Fatalf("runtime before the kill: sandboxes %v, containers %v", sandboxes, containers)
	}
	podCgroup := func(uid types.UID) string {
		return filepath.Join("/sys/fs/cgroup/cpu", h.cgroupRoot, "kubepods/besteffort/pod"+string(uid))
	}
	for _, p := range []*v1.Pod{before, goner} {
		if _, err := os.Stat(podCgroup(p.UID)); err != nil {
			t.Fatalf("pod cgroup of %s before the kill: %v", p.Name, err)
		}
	}

	// Both daemons die at once, as the embedded shim dies with the kubelet.
	if err := kubelet.signal(syscall.SIGKILL, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := shim.signal(syscall.SIGKILL, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := len(leakcheck.Monitors(t, h.shimState)); n != 3 {
		t.Errorf("%d container monitors after the kill, want 3 (the containers keep running)", n)
	}
	// While the kubelet is down, one manifest goes: its pod must go at the
	// next start, the other must stay untouched.
	if err := os.Remove(filepath.Join(h.manifests, "goner.yaml")); err != nil {
		t.Fatal(err)
	}

	shim.start()
	kubelet.start("--stop-pods-on-exit")
	var after *v1.Pod
	waitFor(t, "the surviving pod ready again", time.Minute, func() bool {
		after = findPod(localPods(h.rootDir), "survivor")
		return after != nil && ready(after)
	})
	waitFor(t, "the pod whose manifest went while the kubelet was down to be removed", time.Minute, func() bool {
		sbs, cs := runtimeIDs(t, d.rt, goner.UID)
		_, err := os.Stat(filepath.Join(h.rootDir, "pods", string(goner.UID)))
		return len(sbs) == 0 && len(cs) == 0 && os.IsNotExist(err)
	})
	// The pod cgroups are consistent again: the goner's removed, the survivor's
	// kept (its containers never stopped).
	waitFor(t, "the goner's pod cgroup removed", time.Minute, func() bool {
		_, err := os.Stat(podCgroup(goner.UID))
		return os.IsNotExist(err)
	})
	if _, err := os.Stat(podCgroup(before.UID)); err != nil {
		t.Errorf("the surviving pod's cgroup after the restart: %v", err)
	}
	if findPod(localPods(h.rootDir), "goner") != nil {
		t.Error("the kubelet lists a pod whose manifest is gone")
	}
	if after.UID != before.UID {
		t.Errorf("pod UID changed from %s to %s", before.UID, after.UID)
	}
	for _, name := range []string{"app", "helper"} {
		b, a := containerStatus(before, name), containerStatus(after, name)
		if a == nil || a.ContainerID != b.ContainerID || a.RestartCount != b.RestartCount || a.State.Running == nil {
			t.Errorf("container %s before the kill %+v\nafter %+v", name, b, a)
		}
	}
	sandboxes2, containers2 := runtimeIDs(t, d.rt, before.UID)
	if strings.Join(sandboxes2, ",") != strings.Join(sandboxes, ",") || fmt.Sprint(containers2) != fmt.Sprint(containers) {
		t.Errorf("runtime changed across the restart:\nbefore %v %v\nafter  %v %v", sandboxes, containers, sandboxes2, containers2)
	}
	if got := strings.Join(whats(h.waitEvents("app-start", "helper-start")), " "); got != "app-start helper-start" && got != "helper-start app-start" {
		t.Errorf("the containers started %q, want once each", got)
	}

	// A graceful stop with --stop-pods-on-exit removes everything.
	if err := kubelet.signal(syscall.SIGTERM, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if code := kubelet.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("nodekit-kubelet exited with %d after SIGTERM", code)
	}
	if sbs, cs := runtimeIDs(t, d.rt, before.UID); len(sbs)+len(cs) > 0 {
		t.Errorf("left in the runtime after a stop with --stop-pods-on-exit: %v %v", sbs, cs)
	}
}
