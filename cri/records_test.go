package cri

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
	"github.com/nodekit-dev/nodekit/cri/monitor"
)

// recordsServer is a Server with only what record keeping needs: directories,
// the object index and a fake runtime (fake_oci_test.go), with quick retries.
func recordsServer(t *testing.T) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		paths:  paths{root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state")},
		objs:   newObjects(),
		closed: make(chan struct{}),
	}
	if err := s.paths.mkdirs(); err != nil {
		t.Fatal(err)
	}
	fake := newFakeOCI()
	s.oci = fake
	first, max := retryFirst, retryMax
	retryFirst, retryMax = time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() {
		fake.stopAll()
		close(s.closed)
		s.bg.Wait()
		retryFirst, retryMax = first, max
	})
	return s
}

// addContainer saves and lists a container in state st.
func (s *Server) addTestContainer(t *testing.T, id string, st runtime.ContainerState) *container {
	t.Helper()
	rec := &containerRecord{ID: id, SandboxID: "sb1", State: st, Config: &runtime.ContainerConfig{Metadata: &runtime.ContainerMetadata{Name: id}}}
	if err := os.MkdirAll(s.paths.containerState(id), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeContainerRecord(s.paths.containerRecord(id), rec); err != nil {
		t.Fatal(err)
	}
	c := newContainer(rec)
	s.objs.addContainer(c)
	return c
}

// breakRecord makes saving container id's record fail (as a full disk would):
// a directory stands where the record's replacement is renamed to. It returns
// the mend.
func (s *Server) breakRecord(t *testing.T, id string) (mend func()) {
	t.Helper()
	p := s.paths.containerRecord(id)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	return func() {
		// A retry may save the record the moment the directory is gone.
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A container's exit is published (status, waiters) only once it is saved; an
// exit that cannot be saved is retried until it can. On the code before, the exit
// was applied in memory, the failed write only logged, and a restart brought the
// container back as RUNNING.
func TestExitSavedBeforePublished(t *testing.T) {
	s := recordsServer(t)
	c := s.addTestContainer(t, "c1", runtime.ContainerState_CONTAINER_RUNNING)
	mend := s.breakRecord(t, "c1")
	if err := atomicfile.ReplaceJSON(s.paths.exitFile("c1"), monitor.Exit{Pid: 9, ExitCode: 3, FinishedAt: time.Now()}, 0o600); err != nil {
		t.Fatal(err)
	}

	s.onExit("c1")
	if st := c.snapshot().State; st != runtime.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("state %v after an exit that could not be saved, want RUNNING (as on disk)", st)
	}
	if isClosed(c.exited) {
		t.Fatal("waiters woken by an exit that is not saved")
	}

	mend()
	select {
	case <-c.exited:
	case <-time.After(time.Minute):
		t.Fatal("the exit was not retried once it could be saved")
	}
	if r := c.snapshot(); r.State != runtime.ContainerState_CONTAINER_EXITED || r.ExitCode != 3 || r.Reason != "Error" {
		t.Fatalf("after the retry: state %v exit code %d reason %q", r.State, r.ExitCode, r.Reason)
	}
	onDisk, err := readContainerRecord(s.paths.containerRecord("c1"))
	if err != nil {
		t.Fatal(err)
	}
	if onDisk.State != runtime.ContainerState_CONTAINER_EXITED || onDisk.ExitCode != 3 {
		t.Fatalf("record on disk: state %v exit code %d", onDisk.State, onDisk.ExitCode)
	}
}

// A removed container's retry ends; so does one whose exit record is gone.
func TestExitRetryEndsWithTheContainer(t *testing.T) {
	s := recordsServer(t)
	s.addTestContainer(t, "c1", runtime.ContainerState_CONTAINER_RUNNING)
	s.breakRecord(t, "c1")
	if err := atomicfile.ReplaceJSON(s.paths.exitFile("c1"), monitor.Exit{Pid: 9, FinishedAt: time.Now()}, 0o600); err != nil {
		t.Fatal(err)
	}
	s.onExit("c1")
	if _, busy := s.retrying.Load("exit/c1"); !busy {
		t.Fatal("no retry after a failed save")
	}
	s.objs.removeContainer("c1")
	deadline := time.Now().Add(time.Minute)
	for {
		if _, busy := s.retrying.Load("exit/c1"); !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the retry outlived its container")
		}
		time.Sleep(time.Millisecond)
	}
}

// killLost, StopContainer's way with a container whose monitor is gone, saves
// EXITED before it shows it; an unsaved one stays UNKNOWN and the call fails.
func TestKillLostSavedBeforePublished(t *testing.T) {
	s := recordsServer(t)
	c := s.addTestContainer(t, "c1", runtime.ContainerState_CONTAINER_UNKNOWN)
	mend := s.breakRecord(t, "c1")
	if err := s.killLost(t.Context(), c); err == nil {
		t.Fatal("killLost succeeded without saving")
	}
	if st := c.snapshot().State; st != runtime.ContainerState_CONTAINER_UNKNOWN {
		t.Fatalf("state %v after a failed save, want UNKNOWN", st)
	}
	mend()
	if err := s.killLost(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if r := c.snapshot(); r.State != runtime.ContainerState_CONTAINER_EXITED || r.ExitCode != 255 {
		t.Fatalf("after killLost: state %v exit code %d", r.State, r.ExitCode)
	}
	onDisk, err := readContainerRecord(s.paths.containerRecord("c1"))
	if err != nil {
		t.Fatal(err)
	}
	if onDisk.State != runtime.ContainerState_CONTAINER_EXITED {
		t.Fatalf("record on disk: state %v", onDisk.State)
	}
}

// updateSandbox keeps memory as on disk when the write fails.
func TestUpdateSandboxSavedBeforePublished(t *testing.T) {
	s := recordsServer(t)
	rec := &sandboxRecord{ID: "sb1", State: runtime.PodSandboxState_SANDBOX_READY, Config: &runtime.PodSandboxConfig{}}
	if err := os.MkdirAll(filepath.Join(s.paths.sandboxRecord("sb1"), "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	sb := newSandbox(rec)
	_, err := s.updateSandbox(sb, func(r *sandboxRecord) bool {
		r.State = runtime.PodSandboxState_SANDBOX_NOTREADY
		return true
	})
	if err == nil {
		t.Fatal("updateSandbox succeeded without saving")
	}
	if st := sb.snapshot().State; st != runtime.PodSandboxState_SANDBOX_READY {
		t.Fatalf("state %v after a failed save, want READY", st)
	}
}

// findProcess finds a monitor by its exact command line, as recovery does after a
// crash during StartContainer.
func TestFindProcess(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	arg := "1000." + strconv.Itoa(os.Getpid()) // unique to this test
	cmd := exec.Command(sleep, arg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid, start, ok := findProcess(sleep, arg)
	if !ok || pid != cmd.Process.Pid || start == 0 {
		t.Fatalf("findProcess = %d %d %v, want pid %d", pid, start, ok, cmd.Process.Pid)
	}
	if _, _, ok := findProcess(sleep, arg+"0"); ok {
		t.Fatal("found a process for another argument")
	}
}
