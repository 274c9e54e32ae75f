package cri_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// withPid sets the pid namespace mode of a pod or container config.
func podWithPid(cfg *runtime.PodSandboxConfig, mode runtime.NamespaceMode) *runtime.PodSandboxConfig {
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = mode
	return cfg
}

func ctrWithPid(cfg *runtime.ContainerConfig, mode runtime.NamespaceMode, target string) *runtime.ContainerConfig {
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = mode
	cfg.Linux.SecurityContext.NamespaceOptions.TargetId = target
	return cfg
}

// infraOf reads the infra process's pid from the sandbox's record.
func (h *harness) infraOf(pod string) int {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join(h.state, "sandboxes", pod, "sandbox.json"))
	if err != nil {
		h.t.Fatal(err)
	}
	var rec struct {
		Record struct {
			InfraPid int `json:"infraPid"`
		} `json:"record"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		h.t.Fatal(err)
	}
	if rec.Record.InfraPid == 0 {
		h.t.Fatalf("pod %s has no infra process in its record:\n%s", pod[:12], data)
	}
	return rec.Record.InfraPid
}

func (h *harness) mustExec(id string, cmd ...string) string {
	h.t.Helper()
	r, err := h.rt.ExecSync(ctx(h.t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 20})
	if err != nil {
		h.t.Fatalf("exec %q in %s: %v", cmd, id[:12], err)
	}
	if r.ExitCode != 0 {
		h.t.Fatalf("exec %q in %s: exit %d: %s%s", cmd, id[:12], r.ExitCode, r.Stdout, r.Stderr)
	}
	return string(r.Stdout)
}

func (h *harness) podStateOf(pod string) runtime.PodSandboxState {
	h.t.Helper()
	resp, err := h.rt.PodSandboxStatus(ctx(h.t), &runtime.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.Status.State
}

// procStatus returns the named field of /proc/<pid>/status.
func procStatus(t *testing.T, pid int, field string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return ""
}

// A pod with pid mode POD: its containers see each other's processes, pid 1 is
// the infra process (unprivileged, in an empty root), and stopping the pod
// ends it.
func TestPodSharedPidNamespace(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod := h.runPodConfig(podWithPid(podConfig("shared"), runtime.NamespaceMode_POD))
	infra := h.infraOf(pod)

	// The infra process: pid 1 of its namespace, uid 65535, no capabilities,
	// an empty root of its own.
	if ns := procStatus(t, infra, "NSpid"); ns != fmt.Sprintf("%d 1", infra) {
		t.Errorf("infra NSpid = %q, want pid 1 in a namespace of its own", ns)
	}
	if uid, eff := procStatus(t, infra, "Uid"), procStatus(t, infra, "CapEff"); uid != "65535 65535 65535 65535" || eff != "0000000000000000" {
		t.Errorf("infra Uid %q CapEff %q, want 65535 and none", uid, eff)
	}
	if entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/root", infra)); err != nil || len(entries) != 0 {
		t.Errorf("infra root has %d entries (%v), want an empty root", len(entries), err)
	}
	// It is accounted to the pod: the cgroupfs driver puts it in a leaf of the
	// pod's cgroup parent.
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", infra))
	if err != nil {
		t.Fatal(err)
	}
	wantCg := fmt.Sprintf(":%s/pod%s/nodekit-infra\n", h.cgroupParent, pod)
	checked := 0
	for l := range strings.SplitSeq(strings.TrimSpace(string(cg)), "\n") {
		if strings.Contains(l, ":memory:") || strings.Contains(l, ":pids:") || strings.HasPrefix(l, "0::") {
			checked++
			if !strings.HasSuffix(l+"\n", wantCg) {
				t.Errorf("infra cgroup %q, want one ending in %q", l, wantCg)
			}
		}
	}
	if checked == 0 {
		t.Errorf("no memory, pids or unified cgroup for the infra process:\n%s", cg)
	}

	a := h.createContainer(pod, nil, ctrWithPid(containerConfig("a", busybox, "sleep", "1001"), runtime.NamespaceMode_POD, ""))
	b := h.createContainer(pod, nil, ctrWithPid(containerConfig("b", busybox, "sleep", "1002"), runtime.NamespaceMode_POD, ""))
	// A container that asks for its own namespace in the same pod gets one.
	c := h.createContainer(pod, nil, ctrWithPid(containerConfig("c", busybox, "sleep", "1003"), runtime.NamespaceMode_CONTAINER, ""))
	for _, id := range []string{a, b, c} {
		h.startContainer(id)
	}
	ps := h.mustExec(b, "ps", "-o", "pid,args")
	if !strings.Contains(ps, "sleep 1001") || !strings.Contains(ps, "sleep 1002") {
		t.Errorf("ps in b does not show both containers:\n%s", ps)
	}
	if strings.Contains(ps, "sleep 1003") {
		t.Errorf("ps in b shows the container with its own namespace:\n%s", ps)
	}
	if cmdline := h.mustExec(a, "cat", "/proc/1/cmdline"); !strings.Contains(cmdline, "nodekit-monitor\x00pause\x00") {
		t.Errorf("pid 1 in the pod is %q, want the infra process", cmdline)
	}
	if ps := h.mustExec(c, "ps", "-o", "pid,args"); strings.Contains(ps, "sleep 1001") {
		t.Errorf("ps in c (pid CONTAINER) shows the pod's processes:\n%s", ps)
	}
	// Stopping a container in a shared namespace stops all of its processes.
	if _, err := h.rt.StopContainer(ctx(t), &runtime.StopContainerRequest{ContainerId: a, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if ps := h.mustExec(b, "ps", "-o", "pid,args"); strings.Contains(ps, "sleep 1001") {
		t.Errorf("a's process still runs after StopContainer:\n%s", ps)
	}

	if _, err := h.rt.StopPodSandbox(ctx(t), &runtime.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if !processGone(infra) {
		t.Errorf("infra process %d still runs after StopPodSandbox", infra)
	}
	if st := h.status(b); st.State != runtime.ContainerState_CONTAINER_EXITED {
		t.Errorf("container b is %v after StopPodSandbox", st.State)
	}
	if _, err := h.rt.RemovePodSandbox(ctx(t), &runtime.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
}

// When the infra process dies, the pod's PID namespace and its containers go
// with it: the sandbox becomes NOTREADY and takes no new containers.
func TestPodInfraDeath(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod := h.runPodConfig(podWithPid(podConfig("dies"), runtime.NamespaceMode_POD))
	a := h.createContainer(pod, nil, ctrWithPid(containerConfig("a", busybox, "sleep", "1000"), runtime.NamespaceMode_POD, ""))
	h.startContainer(a)
	events, err := h.rt.GetContainerEvents(ctx(t), &runtime.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}

	infra := h.infraOf(pod)
	if err := syscall.Kill(infra, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sandbox to become NOTREADY", 10*time.Second, func() bool {
		return h.podStateOf(pod) == runtime.PodSandboxState_SANDBOX_NOTREADY
	})
	h.waitState(a, runtime.ContainerState_CONTAINER_EXITED, 10*time.Second)
	for {
		ev, err := events.Recv()
		if err != nil {
			t.Fatalf("no sandbox stopped event: %v", err)
		}
		if ev.ContainerId == pod && ev.ContainerEventType == runtime.ContainerEventType_CONTAINER_STOPPED_EVENT {
			break
		}
	}
	_, err = h.rt.CreateContainer(ctx(t), &runtime.CreateContainerRequest{PodSandboxId: pod,
		Config: ctrWithPid(containerConfig("late", busybox, "true"), runtime.NamespaceMode_POD, "")})
	wantCode(t, "create in a pod whose PID namespace is gone", err, codes.FailedPrecondition, "not ready")
}

// TARGET joins another container's PID namespace: the way `kubectl debug
// --target` reaches a container.
func TestPidTargetNamespace(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod, podCfg := h.runPod("target") // pid CONTAINER: each container has its own
	app := h.createContainer(pod, podCfg, containerConfig("app", busybox, "sleep", "1004"))
	created := h.createContainer(pod, podCfg, containerConfig("idle", busybox, "sleep", "1"))
	h.startContainer(app)

	debug := h.createContainer(pod, podCfg, ctrWithPid(containerConfig("debug", busybox, "sleep", "1005"), runtime.NamespaceMode_TARGET, app))
	h.startContainer(debug)
	ps := h.mustExec(debug, "ps", "-o", "pid,args")
	if !strings.Contains(ps, "sleep 1004") || !strings.Contains(ps, "sleep 1005") {
		t.Errorf("ps in the debug container does not show the target's processes:\n%s", ps)
	}
	if ps := h.mustExec(app, "ps", "-o", "pid,args"); !strings.Contains(ps, "sleep 1005") {
		t.Errorf("the target does not see the debug container:\n%s", ps)
	}

	create := func(name, target string) error {
		_, err := h.rt.CreateContainer(ctx(t), &runtime.CreateContainerRequest{PodSandboxId: pod, SandboxConfig: podCfg,
			Config: ctrWithPid(containerConfig(name, busybox, "true"), runtime.NamespaceMode_TARGET, target)})
		return err
	}
	wantCode(t, "TARGET of a missing container", create("t1", "0123456789abcdef"), codes.NotFound, "0123456789abcdef")
	wantCode(t, "TARGET of a container that is not running", create("t2", created), codes.FailedPrecondition, "not running")
	wantCode(t, "TARGET without a target", create("t3", ""), codes.InvalidArgument, "target_id")
	other, otherCfg := h.runPod("other")
	_, err := h.rt.CreateContainer(ctx(t), &runtime.CreateContainerRequest{PodSandboxId: other, SandboxConfig: otherCfg,
		Config: ctrWithPid(containerConfig("t4", busybox, "true"), runtime.NamespaceMode_TARGET, app)})
	wantCode(t, "TARGET in another pod", err, codes.InvalidArgument, "another pod sandbox")
}

// A host-PID pod: containers that ask for the pod's namespace get the host's.
func TestHostPidPod(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod := h.runPodConfig(podWithPid(podConfig("hostpid"), runtime.NamespaceMode_NODE))
	c := h.createContainer(pod, nil, ctrWithPid(containerConfig("c", busybox, "sleep", "1000"), runtime.NamespaceMode_POD, ""))
	h.startContainer(c)
	self, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(h.mustExec(c, "readlink", "/proc/self/ns/pid")); got != self {
		t.Errorf("container pid namespace %s, want the host's %s", got, self)
	}
}

// After a restart of the shim, a pod sharing its PID namespace keeps working
// with the same infra process; a pod whose infra process died meanwhile is
// NOTREADY.
func TestCrashRecoveryKeepsPidNamespace(t *testing.T) {
	h := newHarness(t)
	d := h.startDaemon()
	out, err := exec.Command(testenv.Binary(t, "nodekit-cri"), "import", "--root", h.root, testenv.Image(t, "busybox")).CombinedOutput()
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	keep := h.runPodConfig(podWithPid(podConfig("keep"), runtime.NamespaceMode_POD))
	lose := h.runPodConfig(podWithPid(podConfig("lose"), runtime.NamespaceMode_POD))
	a := h.createContainer(keep, nil, ctrWithPid(containerConfig("a", busybox, "sleep", "1006"), runtime.NamespaceMode_POD, ""))
	h.startContainer(a)
	keepInfra, loseInfra := h.infraOf(keep), h.infraOf(lose)

	d.kill()
	if err := syscall.Kill(loseInfra, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed infra process to go", 10*time.Second, func() bool { return processGone(loseInfra) })
	h.startDaemon()

	if st := h.podStateOf(keep); st != runtime.PodSandboxState_SANDBOX_READY {
		t.Fatalf("pod with a live infra process is %v after the restart", st)
	}
	if got := h.infraOf(keep); got != keepInfra || processGone(keepInfra) {
		t.Fatalf("infra process %d (gone: %v), was %d", got, processGone(keepInfra), keepInfra)
	}
	if st := h.podStateOf(lose); st != runtime.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("pod whose infra process died while the shim was down is %v", st)
	}
	b := h.createContainer(keep, nil, ctrWithPid(containerConfig("b", busybox, "sleep", "1007"), runtime.NamespaceMode_POD, ""))
	h.startContainer(b)
	if ps := h.mustExec(b, "ps", "-o", "pid,args"); !strings.Contains(ps, "sleep 1006") {
		t.Errorf("a container started after the restart does not share the pod's namespace:\n%s", ps)
	}
	// The restarted shim still notices the infra process's death.
	if err := syscall.Kill(keepInfra, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sandbox to become NOTREADY", 10*time.Second, func() bool {
		return h.podStateOf(keep) == runtime.PodSandboxState_SANDBOX_NOTREADY
	})
	for _, pod := range []string{keep, lose} {
		if _, err := h.rt.RemovePodSandbox(ctx(t), &runtime.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatal(err)
		}
	}
}
