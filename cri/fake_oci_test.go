package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
	"github.com/nodekit-dev/nodekit/cri/monitor"
	"github.com/nodekit-dev/nodekit/cri/runc"
)

// fakeOCI is an ociRuntime whose containers are ordinary processes of the test
// (no root, no namespaces): Start runs the bundle's process args on the host
// (sleep when there are none), and a
// goroutine plays its monitor, writing the exit record when the process ends and
// dropping the runtime state (DeleteOnExit). Signals reach the real process, so
// the server's stop logic is exercised for real.
type fakeOCI struct {
	mu   sync.Mutex
	ctrs map[string]*fakeContainer
	// command is the process standing in for container cfg.ID (default: sleep).
	command func(cfg monitor.Config) *exec.Cmd
	// startErr, when set, fails every Start.
	startErr error
	calls    []string
}

type fakeContainer struct {
	cmd       *exec.Cmd
	done      chan struct{}
	resources []byte
}

func newFakeOCI() *fakeOCI { return &fakeOCI{ctrs: map[string]*fakeContainer{}} }

func (f *fakeOCI) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

// called reports how many calls started with prefix.
func (f *fakeOCI) called(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if len(c) >= len(prefix) && c[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

func (f *fakeOCI) Start(ctx context.Context, dir string, cfg monitor.Config) (int, int, error) {
	f.record("start " + cfg.ID)
	if f.startErr != nil {
		return 0, 0, fmt.Errorf("start container %s: %w", cfg.ID, f.startErr)
	}
	cmd := exec.Command("sleep", "1000")
	var sp specs.Spec
	if data, err := os.ReadFile(filepath.Join(cfg.Bundle, "config.json")); err == nil && json.Unmarshal(data, &sp) == nil &&
		sp.Process != nil && len(sp.Process.Args) > 0 {
		cmd = exec.Command(sp.Process.Args[0], sp.Process.Args[1:]...)
	}
	if f.command != nil {
		cmd = f.command(cfg)
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	fc := &fakeContainer{cmd: cmd, done: make(chan struct{})}
	f.mu.Lock()
	f.ctrs[cfg.ID] = fc
	f.mu.Unlock()
	go func() {
		err := cmd.Wait()
		ex := monitor.Exit{Pid: cmd.Process.Pid, FinishedAt: time.Now()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ws := ee.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				ex.Signal = int(ws.Signal())
				ex.ExitCode = 128 + int32(ws.Signal())
			} else {
				ex.ExitCode = int32(ws.ExitStatus())
			}
		}
		if cfg.DeleteOnExit {
			f.mu.Lock()
			delete(f.ctrs, cfg.ID)
			f.mu.Unlock()
		}
		// Fails once the test's state directory is gone; a test that needs the
		// record finds it missing.
		_ = atomicfile.ReplaceJSON(cfg.ExitFile, ex, 0o600)
		close(fc.done)
	}()
	return cmd.Process.Pid, cmd.Process.Pid, nil
}

func (f *fakeOCI) get(id string) (*fakeContainer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fc := f.ctrs[id]
	if fc == nil {
		return nil, fmt.Errorf("%w: %s", runc.ErrNotExist, id)
	}
	return fc, nil
}

func (f *fakeOCI) running(fc *fakeContainer) bool {
	select {
	case <-fc.done:
		return false
	default:
		return true
	}
}

func (f *fakeOCI) Exists(id string) bool {
	_, err := f.get(id)
	return err == nil
}

func (f *fakeOCI) IDs() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.ctrs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

func (f *fakeOCI) State(ctx context.Context, id string) (*runc.State, error) {
	fc, err := f.get(id)
	if err != nil {
		return nil, err
	}
	st := &runc.State{ID: id, Pid: fc.cmd.Process.Pid, Status: "running"}
	if !f.running(fc) {
		st.Status = "stopped"
	}
	return st, nil
}

func (f *fakeOCI) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	f.record(fmt.Sprintf("kill %s %d", id, sig))
	fc, err := f.get(id)
	if err != nil {
		return err
	}
	if !f.running(fc) {
		return fmt.Errorf("%w: %s", runc.ErrNotRunning, id)
	}
	return fc.cmd.Process.Signal(sig)
}

func (f *fakeOCI) Delete(ctx context.Context, id string) error {
	f.record("delete " + id)
	fc, err := f.get(id)
	if err != nil {
		return nil
	}
	if f.running(fc) {
		fc.cmd.Process.Kill()
		<-fc.done
	}
	f.mu.Lock()
	delete(f.ctrs, id)
	f.mu.Unlock()
	return nil
}

func (f *fakeOCI) Update(ctx context.Context, id string, resources []byte) error {
	f.record("update " + id)
	fc, err := f.get(id)
	if err != nil {
		return err
	}
	if !f.running(fc) {
		return fmt.Errorf("%w: %s", runc.ErrNotRunning, id)
	}
	f.mu.Lock()
	fc.resources = resources
	f.mu.Unlock()
	return nil
}

// Exec runs the process on the host (the fake container has no namespaces of
// its own), with runc's timeout behaviour.
func (f *fakeOCI) Exec(ctx context.Context, id string, o runc.ExecOptions) (int, error) {
	f.record("exec " + id)
	if _, err := f.get(id); err != nil {
		return 0, err
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, o.Process.Args[0], o.Process.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case o.Timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return 0, fmt.Errorf("exec in %s: %w", id, runc.ErrTimeout)
	case errors.As(err, &ee):
		return ee.ExitCode(), nil
	}
	return 0, err
}

func (f *fakeOCI) Features(ctx context.Context) (*runc.Features, error) { return &runc.Features{}, nil }

func (f *fakeOCI) Monitor(dir string) (int, uint64, bool) {
	fc, err := f.get(filepath.Base(dir))
	if err != nil || !f.running(fc) {
		return 0, 0, false
	}
	start, err := procStartTime(fc.cmd.Process.Pid)
	return fc.cmd.Process.Pid, start, err == nil
}

// stopAll ends every process still running (test clean-up).
func (f *fakeOCI) stopAll() {
	f.mu.Lock()
	var all []*fakeContainer
	for _, fc := range f.ctrs {
		all = append(all, fc)
	}
	f.mu.Unlock()
	for _, fc := range all {
		if f.running(fc) {
			fc.cmd.Process.Kill()
			<-fc.done
		}
	}
}
