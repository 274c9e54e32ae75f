package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/internal/logtail"
)

// Daemon is a process the benchmark started.
type Daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has been reaped
	waitErr error
}

// Start starts argv as name with stdout and stderr appended to logPath, in /,
// in its own process group.
func Start(name, logPath string, argv ...string) (*Daemon, error) {
	return start(name, logPath, false, argv)
}

// StartHelper starts a process like Start that also gets SIGTERM when the
// benchmark dies: for helpers that hold nothing needing cleanup through them
// (a test image server), so they may as well not outlive a killed benchmark.
func StartHelper(name, logPath string, argv ...string) (*Daemon, error) {
	return start(name, logPath, true, argv)
}

func start(name, logPath string, dieWithParent bool, argv []string) (*Daemon, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("start %s: no command", name)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if dieWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &Daemon{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// PID is the process's id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Done is closed once the process has ended (and been reaped).
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Exited reports whether the process has ended.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended (exec.Cmd.Wait's error: nil for exit status 0);
// nil while it runs.
func (d *Daemon) Err() error {
	if !d.Exited() {
		return nil
	}
	return d.waitErr
}

// LogTail returns the last n lines of the process's log, for error messages
// ("" when the log cannot be read).
func (d *Daemon) LogTail(n int) string { return logtail.Lines(d.logPath, n) }

// Stop sends SIGTERM, waits up to grace for the process to end, then SIGKILLs
// it and waits for it. It says what happened.
func (d *Daemon) Stop(grace time.Duration) Stopped {
	s := Stopped{Name: d.name, PID: d.PID(), Grace: grace}
	if d.Exited() {
		s.How, s.Err = AlreadyExited, d.waitErr
		return s
	}
	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-d.done:
		s.How, s.Took, s.Err = Terminated, time.Since(start), d.waitErr
		return s
	case <-t.C:
	}
	d.cmd.Process.Kill()
	<-d.done
	s.How, s.Took, s.Err = Killed, time.Since(start), d.waitErr
	return s
}

// StopPID stops a process the benchmark did not start itself (a daemon of a
// run that was killed) by its PID: SIGTERM, then SIGKILL after grace. It
// cannot know the process's exit status: Err is only set when SIGTERM could not
// be sent.
func StopPID(pid int, name string, grace time.Duration) Stopped {
	s := Stopped{Name: name, PID: pid, Grace: grace}
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		s.How, s.Err = NotSignalled, err
		return s
	}
	if procfs.WaitGone([]int{pid}, grace) {
		s.How, s.Took = Terminated, time.Since(start)
		return s
	}
	syscall.Kill(pid, syscall.SIGKILL)
	procfs.WaitGone([]int{pid}, 5*time.Second)
	s.How, s.Took = Killed, time.Since(start)
	return s
}

// How is how a process was stopped.
type How int

const (
	// Terminated: it ended after SIGTERM, within the grace period.
	Terminated How = iota
	// Killed: it got SIGKILL after the grace period.
	Killed
	// AlreadyExited: it had ended before Stop.
	AlreadyExited
	// NotSignalled: SIGTERM could not be sent (StopPID: the process is gone).
	NotSignalled
)

// Stopped says how a process was stopped.
type Stopped struct {
	Name  string
	PID   int
	How   How
	Grace time.Duration // the grace period it had
	Took  time.Duration // from SIGTERM to its end
	Err   error         // its exit (Stop), or why it could not be signalled (NotSignalled)
}

// String says what happened in one line: "stopped containerd (pid 42) with
// SIGTERM", "killed nodekit-cri (pid 42) with SIGKILL after 10s", "nodekit-cri
// (pid 42) had already exited: exit status 1".
func (s Stopped) String() string {
	switch s.How {
	case Killed:
		return fmt.Sprintf("killed %s (pid %d) with SIGKILL after %s", s.Name, s.PID, s.Grace)
	case AlreadyExited:
		return fmt.Sprintf("%s (pid %d) had already exited: %v", s.Name, s.PID, s.Err)
	case NotSignalled:
		return fmt.Sprintf("%s (pid %d): %v", s.Name, s.PID, s.Err)
	default:
		return fmt.Sprintf("stopped %s (pid %d) with SIGTERM", s.Name, s.PID)
	}
}
