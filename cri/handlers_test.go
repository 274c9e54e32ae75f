package cri

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
	"github.com/nodekit-dev/nodekit/cri/monitor"
)

// The handlers' logic on the fake runtime (fake_oci_test.go): no root needed.

// handlerServer is recordsServer with its exit watcher running, as New starts it.
func handlerServer(t *testing.T) (*Server, *fakeOCI) {
	t.Helper()
	s := recordsServer(t)
	w, err := newExitWatcher(s.paths.exitsDir(), s.onExit, s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.exits = w
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		w.run()
	}()
	t.Cleanup(w.close)
	return s, s.oci.(*fakeOCI)
}

// addTestSandbox saves and lists a READY sandbox.
func (s *Server) addTestSandbox(t *testing.T, id string) *sandbox {
	t.Helper()
	rec := &sandboxRecord{ID: id, State: runtime.PodSandboxState_SANDBOX_READY,
		Config: &runtime.PodSandboxConfig{Metadata: &runtime.PodSandboxMetadata{Name: id, Namespace: "ns", Uid: id}}}
	if err := os.MkdirAll(s.paths.sandboxState(id), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeSandboxRecord(s.paths.sandboxRecord(id), rec); err != nil {
		t.Fatal(err)
	}
	sb := newSandbox(rec)
	s.objs.addSandbox(sb)
	return sb
}

// addCreatedContainer saves and lists a CREATED container of sandbox sbID whose
// bundle runs args (the fake runtime runs them on the host).
func (s *Server) addCreatedContainer(t *testing.T, id, sbID string, cfg *runtime.ContainerConfig, args ...string) *container {
	t.Helper()
	if cfg == nil {
		cfg = &runtime.ContainerConfig{}
	}
	if cfg.Metadata == nil {
		cfg.Metadata = &runtime.ContainerMetadata{Name: id}
	}
	if err := os.MkdirAll(s.paths.bundle(id), 0o700); err != nil {
		t.Fatal(err)
	}
	sp := specs.Spec{Process: &specs.Process{Args: args}, Linux: &specs.Linux{}}
	data, err := json.Marshal(sp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.paths.bundle(id), "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &containerRecord{ID: id, SandboxID: sbID, State: runtime.ContainerState_CONTAINER_CREATED, Config: cfg,
		CreatedAt: time.Now().UnixNano(), OwnPidNS: true, StopSignal: containerStopSignal(cfg, "")}
	if err := writeContainerRecord(s.paths.containerRecord(id), rec); err != nil {
		t.Fatal(err)
	}
	c := newContainer(rec)
	s.objs.addContainer(c)
	return c
}

func (s *Server) mustStatus(t *testing.T, id string) *runtime.ContainerStatus {
	t.Helper()
	resp, err := s.ContainerStatus(t.Context(), &runtime.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status
}

func waitChan(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(3 * time.Minute):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func wantCode(t *testing.T, err error, code codes.Code, substr string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), substr) {
		t.Fatalf("error %v, want %v containing %q", err, code, substr)
	}
}

// Start, then stop with a grace period: the stop signal ends the process, its exit
// is recorded from the monitor's record and the container is released.
func TestUnitStartAndStop(t *testing.T) {
	s, fake := handlerServer(t)
	s.addTestSandbox(t, "sb1")
	c := s.addCreatedContainer(t, "c1", "sb1", nil, "sleep", "1000")
	if _, err := s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: "c1"}); err != nil {
		t.Fatal(err)
	}
	st := s.mustStatus(t, "c1")
	if st.State != runtime.ContainerState_CONTAINER_RUNNING || st.StartedAt == 0 {
		t.Fatalf("after start: %v started %d", st.State, st.StartedAt)
	}
	if rec := c.snapshot(); rec.Pid == 0 || rec.PidStart == 0 {
		t.Fatalf("pid %d start %d not recorded", rec.Pid, rec.PidStart)
	}
	onDisk, err := readContainerRecord(s.paths.containerRecord("c1"))
	if err != nil || onDisk.State != runtime.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("record on disk after start: %v %v", onDisk, err)
	}
	if _, err := s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: "c1"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("second start: %v, want FailedPrecondition", err)
	}

	if _, err := s.StopContainer(t.Context(), &runtime.StopContainerRequest{ContainerId: "c1", Timeout: 60}); err != nil {
		t.Fatal(err)
	}
	st = s.mustStatus(t, "c1")
	if st.State != runtime.ContainerState_CONTAINER_EXITED || st.ExitCode != 143 || st.Reason != "Error" || st.FinishedAt < st.StartedAt {
		t.Fatalf("after stop: %v code %d reason %q finished %d", st.State, st.ExitCode, st.Reason, st.FinishedAt)
	}
	if isClosed(c.released) == false {
		t.Fatal("StopContainer returned before the container was released")
	}
	if fake.Exists("c1") {
		t.Fatal("the runtime still has the container after the stop")
	}
	// Stopping again, or a container that does not exist, succeeds.
	if _, err := s.StopContainer(t.Context(), &runtime.StopContainerRequest{ContainerId: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StopContainer(t.Context(), &runtime.StopContainerRequest{ContainerId: "nope"}); err != nil {
		t.Fatal(err)
	}
}

// A process that ignores its stop signal is killed when the grace period ends.
func TestUnitStopEscalatesToKill(t *testing.T) {
	s, _ := handlerServer(t)
	s.addTestSandbox(t, "sb1")
	ctl := t.TempDir()
	s.addCreatedContainer(t, "c1", "sb1", nil, "sh", "-c", `trap "" TERM; touch `+ctl+`/ready; while :; do sleep 0.05; done`)
	if _, err := s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: "c1"}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(ctl, "ready"))
	if _, err := s.StopContainer(t.Context(), &runtime.StopContainerRequest{ContainerId: "c1", Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if st := s.mustStatus(t, "c1"); st.ExitCode != 137 {
		t.Fatalf("exit code %d, want 137 (SIGKILL after the grace period)", st.ExitCode)
	}
}

// The config's stop signal is the one sent (the pod's lifecycle.stopSignal).
func TestUnitStopSignalFromConfig(t *testing.T) {
	s, fake := handlerServer(t)
	s.addTestSandbox(t, "sb1")
	ctl := t.TempDir()
	cfg := &runtime.ContainerConfig{StopSignal: runtime.Signal_SIGNAL_SIGQUIT}
	s.addCreatedContainer(t, "c1", "sb1", cfg, "sh", "-c", `trap "exit 7" QUIT; touch `+ctl+`/ready; while :; do sleep 0.05; done`)
	if got := s.mustStatus(t, "c1").StopSignal; got != runtime.Signal_SIGNAL_SIGQUIT {
		t.Fatalf("status stop signal %v", got)
	}
	if _, err := s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: "c1"}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(ctl, "ready"))
	if _, err := s.StopContainer(t.Context(), &runtime.StopContainerRequest{ContainerId: "c1", Timeout: 120}); err != nil {
		t.Fatal(err)
	}
	if st := s.mustStatus(t, "c1"); st.ExitCode != 7 {
		t.Fatalf("exit code %d, want 7 (the SIGQUIT trap)", st.ExitCode)
	}
	if n := fake.called("kill "); n != 0 {
		t.Fatalf("%d runtime kills for a container that owns its PID namespace (its init is signalled directly)", n)
	}
}

// A container that does not own its PID namespace is signalled through the
// runtime (kill --all); one that exits meanwhile is stopped, not an error.
func TestUnitStopThroughRuntime(t *testing.T) {
	s, fake := handlerServer(t)
	s.addTestSandbox(t, "sb1")
	c := s.addCreatedContainer(t, "c1", "sb1", nil, "sleep", "1000")
	if _, err := s.updateContainer(c, func(r *containerRecord) bool { r.OwnPidNS = false; return true }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StopContainer(t.Context(), &runtime.StopContainerRequest{ContainerId: "c1", Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	if st := s.mustStatus(t, "c1"); st.State != runtime.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
		t.Fatalf("after stop: %v code %d", st.State, st.ExitCode)
	}
	if fake.called("kill c1 9") != 1 {
		t.Fatalf("runtime calls %v, want one kill c1 9", fake.calls)
	}
}

// A start the runtime refuses leaves the container EXITED with StartError (exit
// code 128), as containerd reports it, and released.
func TestUnitStartFailure(t *testing.T) {
	s, fake := handlerServer(t)
	s.addTestSandbox(t, "sb1")
	c := s.addCreatedContainer(t, "c1", "sb1", nil, "true")
	fake.startErr = os.ErrPermission
	_, err := s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: "c1"})
	wantCode(t, err, codes.Unknown, "start container c1")
	st := s.mustStatus(t, "c1")
	if st.State != runtime.ContainerState_CONTAINER_EXITED || st.Reason != "StartError" || st.ExitCode != startErrorExitCode || !strings.Contains(st.Message, "permission denied") {
		t.Fatalf("after a failed start: %v %q code %d %q", st.State, st.Reason, st.ExitCode, st.Message)
	}
	waitChan(t, c.released, "the release of a container that failed to start")
}

// StartContainer's preconditions: a created container, in a ready sandbox.
func TestUnitStartPreconditions(t *testing.T) {
	s, _ := handlerServer(t)
	sb := s.addTestSandbox(t, "sb1")
	s.addCreatedContainer(t, "c1", "sb1", nil, "true")
	s.addCreatedContainer(t, "c2", "gone", nil, "true")
	_, err := s.StartContainer(t.Context(), &runtime.StartContainerRequest{})
	wantCode(t, err, codes.InvalidArgument, "container_id")
	_, err = s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: "nope"})
	wantCode(t, err, codes.NotFound, "nope")
	_, err = s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: "c2"})
	wantCode(t, err, codes.FailedPrecondition, "pod sandbox is gone")
	if _, err := s.updateSandbox(sb, func(r *sandboxRecord) bool { r.State = runtime.PodSandboxState_SANDBOX_NOTREADY; return true }); err != nil {
		t.Fatal(err)
	}
	_, err = s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: "c1"})
	wantCode(t, err, codes.FailedPrecondition, "not ready")
}

// A container that exits by itself reports its code and reason; one that is
// still created stops as a no-op.
func TestUnitExitReasons(t *testing.T) {
	s, _ := handlerServer(t)
	s.addTestSandbox(t, "sb1")
	for id, tc := range map[string]struct {
		args   []string
		code   int32
		reason string
	}{
		"ok":   {[]string{"true"}, 0, "Completed"},
		"fail": {[]string{"sh", "-c", "exit 3"}, 3, "Error"},
	} {
		c := s.addCreatedContainer(t, id, "sb1", nil, tc.args...)
		if _, err := s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
		waitChan(t, c.exited, id+"'s exit")
		if st := s.mustStatus(t, id); st.ExitCode != tc.code || st.Reason != tc.reason {
			t.Errorf("%s: code %d reason %q, want %d %q", id, st.ExitCode, st.Reason, tc.code, tc.reason)
		}
	}
	s.addCreatedContainer(t, "created", "sb1", nil, "true")
	if _, err := s.StopContainer(t.Context(), &runtime.StopContainerRequest{ContainerId: "created"}); err != nil {
		t.Fatal(err)
	}
	if st := s.mustStatus(t, "created"); st.State != runtime.ContainerState_CONTAINER_CREATED {
		t.Fatalf("a created container stopped is %v, want still CREATED", st.State)
	}
}

// Recovery reconciles each record with what is true now.
func TestUnitReconcile(t *testing.T) {
	s, fake := handlerServer(t)
	s.addTestSandbox(t, "sb1")

	// RUNNING with an exit record: exited, with the record's code.
	exited := s.addCreatedContainer(t, "exited", "sb1", nil)
	if _, err := s.updateContainer(exited, func(r *containerRecord) bool { r.State = runtime.ContainerState_CONTAINER_RUNNING; return true }); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.ReplaceJSON(s.paths.exitFile("exited"), monitor.Exit{ExitCode: 9, FinishedAt: time.Now()}, 0o600); err != nil {
		t.Fatal(err)
	}
	// RUNNING, its monitor gone, no exit record: unknown.
	lost := s.addCreatedContainer(t, "lost", "sb1", nil)
	if _, err := s.updateContainer(lost, func(r *containerRecord) bool {
		r.State, r.MonitorPid, r.MonitorTime = runtime.ContainerState_CONTAINER_RUNNING, 1<<22-1, 1
		return true
	}); err != nil {
		t.Fatal(err)
	}
	// CREATED, but the runtime runs it (the previous run died while starting it).
	started := s.addCreatedContainer(t, "started", "sb1", nil, "sleep", "1000")
	if _, _, err := fake.Start(t.Context(), s.paths.containerState("started"), monitor.Config{ID: "started", Bundle: s.paths.bundle("started"), ExitFile: filepath.Join(t.TempDir(), "x.json")}); err != nil {
		t.Fatal(err)
	}
	// CREATED and never started: stays created.
	created := s.addCreatedContainer(t, "created", "sb1", nil)

	for _, c := range []*container{exited, lost, started, created} {
		s.reconcile(t.Context(), c)
	}
	for c, want := range map[*container]runtime.ContainerState{
		exited: runtime.ContainerState_CONTAINER_EXITED, lost: runtime.ContainerState_CONTAINER_UNKNOWN,
		started: runtime.ContainerState_CONTAINER_RUNNING, created: runtime.ContainerState_CONTAINER_CREATED,
	} {
		rec := c.snapshot()
		if rec.State != want {
			t.Errorf("%s: %v, want %v", rec.ID, rec.State, want)
		}
		onDisk, err := readContainerRecord(s.paths.containerRecord(rec.ID))
		if err != nil || onDisk.State != want {
			t.Errorf("%s on disk: %v (%v), want %v", rec.ID, onDisk.State, err, want)
		}
	}
	if r := exited.snapshot(); r.ExitCode != 9 {
		t.Errorf("exited: code %d, want 9", r.ExitCode)
	}
	if r := started.snapshot(); r.Pid == 0 {
		t.Error("started: no pid recorded")
	}
	// StopContainer on the unknown one kills what is left and records exit 255.
	if _, err := s.StopContainer(t.Context(), &runtime.StopContainerRequest{ContainerId: "lost"}); err != nil {
		t.Fatal(err)
	}
	if st := s.mustStatus(t, "lost"); st.State != runtime.ContainerState_CONTAINER_EXITED || st.ExitCode != 255 || st.Reason != "Unknown" {
		t.Fatalf("lost after stop: %v code %d %q", st.State, st.ExitCode, st.Reason)
	}
}

// UpdateContainerResources applies live, rewrites the bundle's spec and the
// record; invalid values name the field.
func TestUnitUpdateContainerResources(t *testing.T) {
	s, fake := handlerServer(t)
	s.addTestSandbox(t, "sb1")
	s.addCreatedContainer(t, "c1", "sb1", nil, "sleep", "1000")
	if _, err := s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: "c1"}); err != nil {
		t.Fatal(err)
	}
	req := &runtime.UpdateContainerResourcesRequest{ContainerId: "c1", Linux: &runtime.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 512}}
	if _, err := s.UpdateContainerResources(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if fake.called("update c1") != 1 {
		t.Fatalf("runtime calls %v, want one update", fake.calls)
	}
	sp, err := s.specOf("c1")
	if err != nil {
		t.Fatal(err)
	}
	if m := sp.Linux.Resources.Memory; m == nil || m.Limit == nil || *m.Limit != 64<<20 {
		t.Fatalf("spec memory %+v", m)
	}
	if got := s.mustStatus(t, "c1").Resources.GetLinux().GetMemoryLimitInBytes(); got != 64<<20 {
		t.Fatalf("status memory limit %d", got)
	}
	_, err = s.UpdateContainerResources(t.Context(), &runtime.UpdateContainerResourcesRequest{ContainerId: "c1", Linux: &runtime.LinuxContainerResources{CpuShares: -5}})
	wantCode(t, err, codes.InvalidArgument, "linux.")
}

// ExecSync returns the command's output and exit code; a timeout is
// DeadlineExceeded; a container that does not run is FailedPrecondition.
func TestUnitExecSync(t *testing.T) {
	s, _ := handlerServer(t)
	s.addTestSandbox(t, "sb1")
	s.addCreatedContainer(t, "c1", "sb1", nil, "sleep", "1000")
	_, err := s.ExecSync(t.Context(), &runtime.ExecSyncRequest{ContainerId: "c1", Cmd: []string{"true"}})
	wantCode(t, err, codes.FailedPrecondition, "not running")
	if _, err := s.StartContainer(t.Context(), &runtime.StartContainerRequest{ContainerId: "c1"}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.ExecSync(t.Context(), &runtime.ExecSyncRequest{ContainerId: "c1", Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 4"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Stdout) != "out\n" || string(resp.Stderr) != "err\n" || resp.ExitCode != 4 {
		t.Fatalf("ExecSync: %q %q %d", resp.Stdout, resp.Stderr, resp.ExitCode)
	}
	_, err = s.ExecSync(t.Context(), &runtime.ExecSyncRequest{ContainerId: "c1", Cmd: []string{"sleep", "100"}, Timeout: 1})
	wantCode(t, err, codes.DeadlineExceeded, "")
	_, err = s.ExecSync(t.Context(), &runtime.ExecSyncRequest{ContainerId: "c1"})
	wantCode(t, err, codes.InvalidArgument, "cmd")
}

func waitFile(t *testing.T, p string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
