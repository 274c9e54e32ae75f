package cri_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const busybox = "nodekit.local/busybox:latest"

// The whole lifecycle over a real gRPC client: pod, container, exec, logs, stop,
// remove; nothing may be left behind.
func TestPodAndContainerLifecycle(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")

	pod, podCfg := h.runPod("life")
	ps, err := h.rt.PodSandboxStatus(ctx(t), &runtime.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil {
		t.Fatal(err)
	}
	if ps.Status.State != runtime.PodSandboxState_SANDBOX_READY || ps.Status.Metadata.Name != "life" {
		t.Fatalf("sandbox status = %v", ps.Status)
	}

	cfg := containerConfig("main", busybox, "sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 1000")
	cfg.Envs = []*runtime.KeyValue{{Key: "GREETING", Value: []byte("hello")}}
	id := h.createContainer(pod, podCfg, cfg)
	if st := h.status(id); st.State != runtime.ContainerState_CONTAINER_CREATED || st.CreatedAt == 0 {
		t.Fatalf("after create: %v", st)
	}
	h.startContainer(id)
	st := h.waitState(id, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	if st.StartedAt == 0 || st.ImageRef == "" || st.Image.Image != busybox {
		t.Fatalf("running status = %v", st)
	}

	// ExecSync: output, exit code, env, hostname, and the timeout.
	exec := func(timeout int64, cmd ...string) (*runtime.ExecSyncResponse, error) {
		return h.rt.ExecSync(ctx(t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeout})
	}
	r, err := exec(10, "sh", "-c", "echo $GREETING; hostname; echo oops >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Stdout) != "hello\nlife\n" || string(r.Stderr) != "oops\n" || r.ExitCode != 3 {
		t.Fatalf("exec: stdout %q stderr %q code %d", r.Stdout, r.Stderr, r.ExitCode)
	}
	start := time.Now()
	_, err = exec(1, "sleep", "30")
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("exec past its timeout: err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("exec timeout of 1s returned after %s", d)
	}
	if _, err := exec(5, "/no/such/binary"); err == nil {
		t.Fatal("exec of a missing binary succeeded")
	}

	// Listing with filters.
	list := func(f *runtime.ContainerFilter) int {
		resp, err := h.rt.ListContainers(ctx(t), &runtime.ListContainersRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Containers)
	}
	running := &runtime.ContainerStateValue{State: runtime.ContainerState_CONTAINER_RUNNING}
	for name, c := range map[string]struct {
		f    *runtime.ContainerFilter
		want int
	}{
		"all":            {nil, 1},
		"id prefix":      {&runtime.ContainerFilter{Id: id[:8]}, 1},
		"other id":       {&runtime.ContainerFilter{Id: "ffff"}, 0},
		"sandbox":        {&runtime.ContainerFilter{PodSandboxId: pod}, 1},
		"running":        {&runtime.ContainerFilter{State: running}, 1},
		"label":          {&runtime.ContainerFilter{LabelSelector: map[string]string{"container": "main"}}, 1},
		"label mismatch": {&runtime.ContainerFilter{LabelSelector: map[string]string{"container": "other"}}, 0},
	} {
		if got := list(c.f); got != c.want {
			t.Errorf("ListContainers(%s) = %d, want %d", name, got, c.want)
		}
	}

	// Stop: the shell is pid 1 and ignores SIGTERM, so it is killed at the timeout.
	start = time.Now()
	if _, err := h.rt.StopContainer(ctx(t), &runtime.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second || d > 15*time.Second {
		t.Fatalf("stop with a 1s timeout took %s", d)
	}
	st = h.status(id)
	if st.State != runtime.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 || st.Reason != "Error" || st.FinishedAt < st.StartedAt {
		t.Fatalf("after stop: state %v code %d reason %q finished %d started %d", st.State, st.ExitCode, st.Reason, st.FinishedAt, st.StartedAt)
	}
	// Stop is idempotent.
	if _, err := h.rt.StopContainer(ctx(t), &runtime.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}

	// The CRI log holds both streams in the CRI format.
	log := readLog(t, st.LogPath)
	line := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (stdout|stderr) [PF] .*$`)
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if !line.MatchString(l) {
			t.Errorf("log line %q is not in the CRI format", l)
		}
	}
	if !strings.Contains(log, " stdout F to-stdout\n") || !strings.Contains(log, " stderr F to-stderr\n") {
		t.Fatalf("log lacks the container's output:\n%s", log)
	}

	if _, err := h.rt.RemoveContainer(ctx(t), &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.rt.ContainerStatus(ctx(t), &runtime.ContainerStatusRequest{ContainerId: id}); status.Code(err) != codes.NotFound {
		t.Fatalf("status of a removed container: %v, want NotFound", err)
	}
	if _, err := h.rt.RemoveContainer(ctx(t), &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := h.rt.StopPodSandbox(ctx(t), &runtime.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatal(err)
		}
	}
	ps, _ = h.rt.PodSandboxStatus(ctx(t), &runtime.PodSandboxStatusRequest{PodSandboxId: pod})
	if ps.GetStatus().GetState() != runtime.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("after stop the sandbox is %v", ps.GetStatus().GetState())
	}
	for i := 0; i < 2; i++ {
		if _, err := h.rt.RemovePodSandbox(ctx(t), &runtime.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatal(err)
		}
	}
	pods, _ := h.rt.ListPodSandbox(ctx(t), &runtime.ListPodSandboxRequest{})
	if len(pods.Items) != 0 {
		t.Fatalf("%d sandboxes left", len(pods.Items))
	}
}

// Exit codes and reasons as the kubelet reads them.
func TestContainerExitReasons(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod, podCfg := h.runPod("exits")

	for _, c := range []struct {
		name   string
		cmd    []string
		code   int32
		reason string
	}{
		{"ok", []string{"true"}, 0, "Completed"},
		{"fail", []string{"sh", "-c", "exit 3"}, 3, "Error"},
		{"big code", []string{"sh", "-c", "exit 255"}, 255, "Error"},
	} {
		id := h.createContainer(pod, podCfg, containerConfig(c.name, busybox, c.cmd...))
		h.startContainer(id)
		st := h.waitState(id, runtime.ContainerState_CONTAINER_EXITED, 10*time.Second)
		if st.ExitCode != c.code || st.Reason != c.reason || st.FinishedAt == 0 {
			t.Errorf("%s: exit code %d reason %q finished %d, want %d %q", c.name, st.ExitCode, st.Reason, st.FinishedAt, c.code, c.reason)
		}
	}
}

// A container over its memory limit is reported OOMKilled.
func TestContainerOOMKilled(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod, podCfg := h.runPod("oom")
	cfg := containerConfig("hog", busybox, "tail", "/dev/zero")
	cfg.Linux.Resources = &runtime.LinuxContainerResources{MemoryLimitInBytes: 16 << 20}
	id := h.createContainer(pod, podCfg, cfg)
	h.startContainer(id)
	st := h.waitState(id, runtime.ContainerState_CONTAINER_EXITED, 30*time.Second)
	if st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Fatalf("exit code %d reason %q, want 137 OOMKilled", st.ExitCode, st.Reason)
	}
}

// A start failure (no such executable) reports StartError and leaves nothing behind.
func TestStartErrorLeavesNothing(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod, podCfg := h.runPod("starterr")
	id := h.createContainer(pod, podCfg, containerConfig("bad", busybox, "/no/such/program"))
	_, err := h.rt.StartContainer(ctx(t), &runtime.StartContainerRequest{ContainerId: id})
	if err == nil || !strings.Contains(err.Error(), "/no/such/program") {
		t.Fatalf("start error %v does not name the program", err)
	}
	st := h.status(id)
	if st.State != runtime.ContainerState_CONTAINER_EXITED || st.Reason != "StartError" || st.ExitCode != 128 {
		t.Fatalf("after a failed start: %v %q %d", st.State, st.Reason, st.ExitCode)
	}
	if _, err := h.rt.RemoveContainer(ctx(t), &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
}
