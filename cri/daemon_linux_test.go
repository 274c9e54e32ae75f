package cri_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// daemon is the real nodekit-cri binary serving the harness's directories.
type daemon struct {
	cmd *exec.Cmd
	log *os.File
}

func (h *harness) startDaemon() *daemon {
	h.t.Helper()
	bin := testenv.Binary(h.t, "nodekit-cri")
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(h.root), "daemon.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--listen", h.sock, "--root", h.root, "--state", h.state,
		"--runtime", h.runc, "--monitor", h.monitor, "--cgroup-parent", h.cgroupParent, "--log-level", "debug"},
		h.cniFlags()...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	d := &daemon{cmd: cmd, log: logf}
	h.t.Cleanup(func() { d.stop(h.t) })
	h.connect()
	waitFor(h.t, "nodekit-cri to serve", 20*time.Second, func() bool {
		_, err := h.rt.Version(ctx(h.t), &runtime.VersionRequest{})
		return err == nil
	})
	return d
}

// stop ends the daemon with SIGTERM (it is a no-op after kill).
func (d *daemon) stop(t *testing.T) {
	if d.cmd.ProcessState == nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.cmd.Wait()
	}
	d.log.Close()
	if t.Failed() {
		data, _ := os.ReadFile(d.log.Name())
		t.Logf("daemon log:\n%s", data)
	}
}

func (d *daemon) kill() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.cmd.Wait()
}

type verboseInfo struct {
	Pid        int `json:"pid"`
	MonitorPid int `json:"monitorPid"`
}

func (h *harness) info(id string) verboseInfo {
	h.t.Helper()
	resp, err := h.rt.ContainerStatus(ctx(h.t), &runtime.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		h.t.Fatal(err)
	}
	var vi verboseInfo
	if err := json.Unmarshal([]byte(resp.Info["info"]), &vi); err != nil {
		h.t.Fatal(err)
	}
	return vi
}

func processGone(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// SIGKILL the shim while one container runs and another exits: after a restart the
// running one is still running (same process) and the other reports its true exit
// code, finish time and complete log.
func TestCrashRecovery(t *testing.T) {
	h := newHarness(t)
	d := h.startDaemon()
	out, err := exec.Command(testenv.Binary(t, "nodekit-cri"), "import", "--root", h.root, testenv.Image(t, "busybox")).CombinedOutput()
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	ctl := filepath.Join(filepath.Dir(h.root), "ctl")
	if err := os.MkdirAll(ctl, 0o755); err != nil {
		t.Fatal(err)
	}

	pod, podCfg := h.runPod("crash")
	keep := h.createContainer(pod, podCfg, containerConfig("keep", busybox, "sh", "-c", "echo keep-started; exec sleep 1000"))
	cfg := containerConfig("finish", busybox, "sh", "-c",
		"echo finish-started; while [ ! -e /ctl/go ]; do sleep 0.05; done; echo finish-done; exit 7")
	cfg.Mounts = []*runtime.Mount{{ContainerPath: "/ctl", HostPath: ctl}}
	finish := h.createContainer(pod, podCfg, cfg)
	h.startContainer(keep)
	h.startContainer(finish)
	h.waitState(keep, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	h.waitState(finish, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	keepInfo, finishInfo := h.info(keep), h.info(finish)

	d.kill()
	killedAt := time.Now()
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The container exits and its monitor records it while no shim runs.
	waitFor(t, "the container to exit while the shim is down", 20*time.Second, func() bool {
		return processGone(finishInfo.Pid) && processGone(finishInfo.MonitorPid)
	})
	if processGone(keepInfo.Pid) {
		t.Fatal("the running container died with the shim")
	}

	restartedAt := time.Now()
	h.startDaemon()
	st := h.status(keep)
	if st.State != runtime.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("after restart the running container is %v", st.State)
	}
	if got := h.info(keep).Pid; got != keepInfo.Pid {
		t.Fatalf("running container pid %d, was %d", got, keepInfo.Pid)
	}
	r, err := h.rt.ExecSync(ctx(t), &runtime.ExecSyncRequest{ContainerId: keep, Cmd: []string{"echo", "alive"}, Timeout: 10})
	if err != nil || string(r.Stdout) != "alive\n" {
		t.Fatalf("exec after restart: %v %q", err, r.GetStdout())
	}
	st = h.status(finish)
	finishedAt := time.Unix(0, st.FinishedAt)
	if st.State != runtime.ContainerState_CONTAINER_EXITED || st.ExitCode != 7 || st.Reason != "Error" {
		t.Fatalf("exited-while-down container: %v code %d reason %q", st.State, st.ExitCode, st.Reason)
	}
	if finishedAt.Before(killedAt) || finishedAt.After(restartedAt) {
		t.Fatalf("finish time %s is not between the kill (%s) and the restart (%s)", finishedAt, killedAt, restartedAt)
	}
	if log := readLog(t, st.LogPath); !strings.Contains(log, "stdout F finish-started\n") || !strings.Contains(log, "stdout F finish-done\n") {
		t.Fatalf("log of the container that exited while the shim was down is incomplete:\n%s", log)
	}

	// The restarted shim stops and removes everything cleanly.
	if _, err := h.rt.StopPodSandbox(ctx(t), &runtime.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.rt.RemovePodSandbox(ctx(t), &runtime.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if !processGone(keepInfo.Pid) {
		t.Fatal("the container survived the removal of its pod")
	}
}
