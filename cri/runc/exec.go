package runc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecOptions describes a process to run inside a running container.
type ExecOptions struct {
	Process *specs.Process
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	// Timeout kills the process when it runs longer; zero means no limit.
	Timeout time.Duration
	// Dir is a scratch directory for the process file, pid file and runtime log. It
	// must exist; Exec removes what it writes there.
	Dir string
	// ConsoleSocket is, for a Process with Terminal set, the unix socket the runtime
	// sends the pty master to (SCM_RIGHTS); the caller accepts on it. The runtime
	// only does that detached (`exec -d`), leaving the process behind when it
	// exits, so Reaper is then required.
	ConsoleSocket string
	// Reaper is the command Exec runs with ConsoleSocket, given the pid file and the
	// runtime command as further arguments: it must run that command as a child
	// subreaper, wait for the process whose pid the runtime writes to the pid file,
	// and exit with its status (128+signal when killed by a signal), as
	// `nodekit-monitor reap` does.
	Reaper []string
}

// killWait bounds how long killing an exec waits for runc to name the process.
const killWait = 10 * time.Second

// ErrTimeout is returned by Exec when the process outlived ExecOptions.Timeout.
var ErrTimeout = errors.New("exec timed out")

// Exec runs o.Process in container id and returns the process's exit code. An error
// means the runtime could not run the process (or the timeout hit), not that the
// process failed.
func (r *Runtime) Exec(ctx context.Context, id string, o ExecOptions) (int, error) {
	if o.Process == nil {
		return -1, errors.New("exec: no process")
	}
	if o.ConsoleSocket != "" && len(o.Reaper) == 0 {
		return -1, errors.New("exec: a console socket needs a reaper")
	}
	procData, err := json.Marshal(o.Process)
	if err != nil {
		return -1, fmt.Errorf("exec: encode process: %w", err)
	}
	dir, err := os.MkdirTemp(o.Dir, "exec-")
	if err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	defer os.RemoveAll(dir)
	procFile := filepath.Join(dir, "process.json")
	pidFile := filepath.Join(dir, "pid")
	logFile := filepath.Join(dir, "log.json")
	if err := os.WriteFile(procFile, procData, 0o600); err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	argv := append([]string{r.opts.Binary}, r.GlobalArgs()...)
	argv = append(argv, "--log", logFile, "--log-format", "json",
		"exec", "--process", procFile, "--pid-file", pidFile)
	if o.ConsoleSocket != "" {
		argv = append(argv, "--detach", "--console-socket", o.ConsoleSocket, id)
		argv = append(append(slices.Clone(o.Reaper), pidFile), argv...)
	} else {
		argv = append(argv, id)
	}
	// The command is not bound to ctx: killing runc would orphan the process inside
	// the container. On timeout or cancellation the process itself is killed and
	// runc (or the reaper), which reaps it, returns.
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	// A reaper that fails says why on its stderr (and exits with 255): keep it, in
	// a file (a pipe would be held by whatever inherits it).
	var reaperErr *os.File
	if len(o.Reaper) > 0 && o.Stderr == nil {
		if reaperErr, err = os.Create(filepath.Join(dir, "reaper.err")); err != nil {
			return -1, fmt.Errorf("exec: %w", err)
		}
		defer reaperErr.Close()
		cmd.Stderr = reaperErr
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()

	var timeout <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var waitErr, cause error
	select {
	case waitErr = <-waitc:
	case <-timeout:
		cause = fmt.Errorf("exec in %s: %w after %s", id, ErrTimeout, o.Timeout)
	case <-ctx.Done():
		cause = fmt.Errorf("exec in %s: %w", id, ctx.Err())
	}
	if cause != nil {
		_ = killExec(cmd, pidFile, waitc) // runc's wait result after the kill: cause says what happened
		return -1, cause
	}
	code := 0
	if waitErr != nil {
		var ee *exec.ExitError
		if !errors.As(waitErr, &ee) {
			return -1, fmt.Errorf("exec in %s: %w", id, waitErr)
		}
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	if _, err := os.Stat(pidFile); err != nil {
		// The process never started: the exit status is the runtime's own failure.
		msg := runtimeError(logFile)
		if msg == "" {
			msg = fmt.Sprintf("runtime exited with %d before starting the process", code)
		}
		return -1, fmt.Errorf("exec in %s: %s", id, msg)
	}
	if reaperErr != nil && code == 255 {
		if msg := reaperMessage(reaperErr); msg != "" {
			return -1, fmt.Errorf("exec in %s: %s", id, msg)
		}
	}
	return code, nil
}

// reaperMessage returns what the reaper wrote to f (its stderr), up to 4 KiB.
func reaperMessage(f *os.File) string {
	buf := make([]byte, 4<<10)
	n, _ := f.ReadAt(buf, 0)
	return strings.TrimSpace(string(buf[:n]))
}

// killExec kills the exec'd process and returns runc's wait result. runc writes
// the pid file only once the process runs (it may already have produced output),
// so the file is waited for while runc lives; killing runc instead would leave the
// process behind. Without a pid file after killWait, runc itself is killed.
func killExec(cmd *exec.Cmd, pidFile string, waitc <-chan error) error {
	deadline := time.NewTimer(killWait)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					return <-waitc
				}
			}
		}
		select {
		case err := <-waitc:
			return err // runc is gone, and with it the process it waited for
		case <-tick.C:
		case <-deadline.C:
			_ = cmd.Process.Kill()
			return <-waitc
		}
	}
}

// runtimeError returns the last error message in a runc JSON log file.
func runtimeError(logFile string) string {
	f, err := os.Open(logFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) == nil && (entry.Level == "error" || entry.Level == "fatal") {
			last = entry.Msg
		}
	}
	return last
}
