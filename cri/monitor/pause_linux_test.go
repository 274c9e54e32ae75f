package monitor

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// startPause starts the binary in pause mode with the clone flags given
// (CLONE_NEWPID|CLONE_NEWNS as the shim does), and returns it with the
// shim's end of its control socket and its first report line.
func startPause(t *testing.T, cloneFlags uintptr) (*exec.Cmd, *os.File, string) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "ctl")
	mnt, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(monitorBinary(t), PauseArg, t.TempDir(), mnt)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: cloneFlags}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	t.Cleanup(func() {
		ours.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, _ := bufio.NewReader(ours).ReadString('\n')
	return cmd, ours, strings.TrimSpace(line)
}

func status(t *testing.T, pid int, field string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// exitCode waits for cmd and returns its exit status.
func exitCode(t *testing.T, cmd *exec.Cmd, within time.Duration) int {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("pause process %d still runs after %s", cmd.Process.Pid, within)
	}
	return cmd.ProcessState.ExitCode()
}

func TestPauseHoldsPidNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	nsenter := testenv.LookPath(t, "nsenter")
	cmd, ctl, report := startPause(t, shimFlags)
	if report != "ok" {
		t.Fatalf("report %q, want ok", report)
	}
	if _, err := ctl.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if got := status(t, pid, "NSpid"); got != fmt.Sprintf("%d 1", pid) {
		t.Errorf("NSpid %q, want pid 1 of a new namespace", got)
	}
	if uid, eff := status(t, pid, "Uid"), status(t, pid, "CapEff"); uid != "65535 65535 65535 65535" || eff != "0000000000000000" {
		t.Errorf("Uid %q CapEff %q, want 65535 without capabilities", uid, eff)
	}
	if entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/root", pid)); err != nil || len(entries) != 0 {
		t.Errorf("root has %d entries (%v), want none", len(entries), err)
	}

	// A process in the namespace leaves an orphan behind; pid 1 inherits and
	// reaps it, so no zombie remains.
	out, err := exec.Command(nsenter, "--target", fmt.Sprint(pid), "--pid", "--", "/bin/sh", "-c", "sleep 1 >/dev/null 2>&1 &").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v\n%s", err, out)
	}
	children := func() string {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		return strings.TrimSpace(string(data))
	}
	waitFor(t, "pid 1 to adopt the orphan", 5*time.Second, func() bool { return children() != "" })
	waitFor(t, "pid 1 to reap the orphan", 5*time.Second, func() bool { return children() == "" })

	// Signals other than SIGTERM and SIGINT are ignored; SIGTERM ends it.
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGPIPE} {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, 5*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

// Without the shim's go-ahead (it died before recording the process), the
// holder exits rather than linger.
func TestPauseExitsWhenShimGoes(t *testing.T) {
	testenv.RequireRoot(t)
	cmd, ctl, report := startPause(t, shimFlags)
	if report != "ok" {
		t.Fatalf("report %q, want ok", report)
	}
	ctl.Close()
	if code := exitCode(t, cmd, 5*time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
}

// Started any other way than the shim does, it refuses to touch anything.
func TestPauseNeedsNewNamespaces(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		name  string
		flags uintptr
		want  string
	}{
		{"no new PID namespace", unix.CLONE_NEWNS, "error: not pid 1"},
		{"no new mount namespace", unix.CLONE_NEWPID, "error: not in a mount namespace of its own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, _, report := startPause(t, tc.flags)
			if !strings.HasPrefix(report, tc.want) {
				t.Errorf("report %q, want %q...", report, tc.want)
			}
			if code := exitCode(t, cmd, 5*time.Second); code == 0 {
				t.Error("exit code 0 after a failed setup")
			}
		})
	}
}

// shimFlags are the clone flags the shim starts the holder with.
const shimFlags = unix.CLONE_NEWPID | unix.CLONE_NEWNS
