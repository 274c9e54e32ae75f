package daemon

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExitedOnItsOwn(t *testing.T) {
	log := filepath.Join(t.TempDir(), "d.log")
	d, err := Start("talker", log, "sh", "-c", "echo one; echo two; echo three >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	<-d.Done()
	if !d.Exited() {
		t.Error("Exited = false after Done")
	}
	var ee *exec.ExitError
	if err := d.Err(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Err = %v, want exit status 3", err)
	}
	if got := d.LogTail(2); got != "two\nthree" {
		t.Errorf("LogTail(2) = %q, want stdout and stderr, last two lines", got)
	}
	if got := d.LogTail(10); got != "one\ntwo\nthree" {
		t.Errorf("LogTail(10) = %q", got)
	}
	s := d.Stop(time.Second)
	if s.How != AlreadyExited {
		t.Errorf("Stop after the exit: %+v", s)
	}
	if want := "talker (pid " + itoa(d.PID()) + ") had already exited: exit status 3"; s.String() != want {
		t.Errorf("Stop: %q, want %q", s, want)
	}
}

func TestStopTerminates(t *testing.T) {
	d, err := Start("sleeper", filepath.Join(t.TempDir(), "d.log"), "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if d.Exited() || d.Err() != nil {
		t.Fatalf("a sleep 60 just started: Exited %v, Err %v", d.Exited(), d.Err())
	}
	pgid, err := syscall.Getpgid(d.PID())
	if err != nil {
		t.Fatal(err)
	}
	if pgid != d.PID() {
		t.Errorf("process group %d, want its own (%d)", pgid, d.PID())
	}
	s := d.Stop(time.Minute)
	if s.How != Terminated || s.Err == nil || !strings.Contains(s.Err.Error(), "terminated") {
		t.Errorf("Stop = %+v, want Terminated by SIGTERM", s)
	}
	if want := "stopped sleeper (pid " + itoa(d.PID()) + ") with SIGTERM"; s.String() != want {
		t.Errorf("Stop: %q, want %q", s, want)
	}
}

func TestStopKills(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "ready")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// It ignores SIGTERM, then says so through the FIFO.
	d, err := StartHelper("stubborn", filepath.Join(dir, "d.log"), "sh", "-c", `trap "" TERM; echo ready > "$0"; exec sleep 60`, fifo)
	if err != nil {
		t.Fatal(err)
	}
	ready, err := os.ReadFile(fifo) // until the shell has written and closed it
	if err != nil || strings.TrimSpace(string(ready)) != "ready" {
		t.Fatalf("read %s: %q, %v", fifo, ready, err)
	}
	s := d.Stop(50 * time.Millisecond)
	if s.How != Killed || s.Took < 50*time.Millisecond {
		t.Errorf("Stop = %+v, want Killed after the grace period", s)
	}
	if want := "killed stubborn (pid " + itoa(d.PID()) + ") with SIGKILL after 50ms"; s.String() != want {
		t.Errorf("Stop: %q, want %q", s, want)
	}
}

func TestStopPID(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := StopPID(cmd.Process.Pid, "sleep", time.Minute)
	cmd.Wait()
	if s.How != Terminated || s.String() != "stopped sleep (pid "+itoa(cmd.Process.Pid)+") with SIGTERM" {
		t.Errorf("StopPID = %+v (%s)", s, s)
	}
	s = StopPID(cmd.Process.Pid, "sleep", time.Minute)
	if s.How != NotSignalled || !errors.Is(s.Err, syscall.ESRCH) {
		t.Errorf("StopPID of a reaped process = %+v, want NotSignalled, ESRCH", s)
	}
}

func TestStartFails(t *testing.T) {
	dir := t.TempDir()
	if _, err := Start("none", filepath.Join(dir, "d.log"), filepath.Join(dir, "no-such-program")); err == nil || !strings.Contains(err.Error(), "start none") {
		t.Errorf("Start of a missing program: %v", err)
	}
	if _, err := Start("nolog", filepath.Join(dir, "no", "such", "dir", "d.log"), "true"); err == nil {
		t.Error("Start with a log in a missing directory: no error")
	}
	if _, err := Start("empty", filepath.Join(dir, "d.log")); err == nil {
		t.Error("Start with no command: no error")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
