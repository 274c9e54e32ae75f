package monitor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	if os.Getenv(zombieRuntimeEnv) != "" {
		os.Exit(zombieRuntime())
	}
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// monitorBinary builds the nodekit-monitor binary once per test run.
func monitorBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "nodekit-monitor-test-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "nodekit-monitor")
		// As the Makefile builds it.
		cmd := exec.Command("go", "build", "-buildvcs=false", "-trimpath", "-ldflags=-s -w", "-o", built.path, "./nodekit-monitor")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitExit polls for the exit record at path.
func waitExit(t testing.TB, path string, timeout time.Duration) Exit {
	t.Helper()
	var exit Exit
	waitFor(t, "exit record "+path, timeout, func() bool {
		var err error
		exit, err = ReadExit(path)
		return err == nil
	})
	return exit
}

// reap waits (with a deadline) for the monitor to exit and returns its state.
func reap(t testing.TB, p *Process, timeout time.Duration) *os.ProcessState {
	t.Helper()
	done := make(chan *os.ProcessState, 1)
	go func() {
		st, _ := p.Monitor.Wait()
		done <- st
	}()
	select {
	case st := <-done:
		return st
	case <-time.After(timeout):
		p.Monitor.Kill()
		t.Fatalf("monitor %d still running after %v", p.MonitorPid, timeout)
		return nil
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	for i := len(data) - 1; i > 0; i-- {
		if data[i] == ')' {
			return i+2 < len(data) && data[i+2] != 'Z' && data[i+2] != 'X'
		}
	}
	return false
}

// adoptOrphans makes the test process a child subreaper until the test ends, so
// that processes orphaned below it (a monitor whose shim died, what a monitor left
// behind) become its children, for the test to reap.
func adoptOrphans(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); err != nil {
			t.Error(err)
		}
	})
}
