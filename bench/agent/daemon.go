package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// daemon is a nodekit-kubelet the benchmark started.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has been reaped
	waitErr error
}

// startDaemon starts argv with stdout and stderr in logPath, in its own process
// group so a terminal's ^C reaches only the benchmark, which then stops it with
// SIGTERM (and it stops its pods).
func startDaemon(name, logPath string, argv ...string) (*daemon, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs. It says what happened.
func (d *daemon) stop(grace time.Duration) string {
	if d.exited() {
		return fmt.Sprintf("%s (pid %d) had already exited: %v", d.name, d.pid(), d.waitErr)
	}
	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return fmt.Sprintf("stopped %s (pid %d) with SIGTERM in %s (exit: %v)", d.name, d.pid(), time.Since(start).Round(time.Millisecond), d.waitErr)
	case <-time.After(grace):
	}
	d.cmd.Process.Kill()
	<-d.done
	return fmt.Sprintf("killed %s (pid %d) with SIGKILL after %s", d.name, d.pid(), grace)
}

// logTail returns the last n lines of the daemon's log, for error messages.
func (d *daemon) logTail(n int) string {
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(bytes.TrimRight(data, "\n")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
