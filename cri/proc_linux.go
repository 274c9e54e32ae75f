package cri

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/internal/cmdline"
)

// procStartTime returns the start time (clock ticks since boot) of pid, which with
// the pid identifies a process across pid reuse.
func procStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses; fields after the
	// last ')' are plain.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields))
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// alive reports whether pid is still the process that started at start.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := procStartTime(pid)
	if err != nil {
		return false
	}
	if start != 0 && st != start {
		return false
	}
	// A zombie is not alive for our purposes.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] == 'Z' {
			return false
		}
	}
	return true
}

// signalProcess sends sig to pid if it is still the process that started at start,
// using a pidfd so the check and the signal refer to the same process.
func signalProcess(pid int, start uint64, sig unix.Signal) (bool, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if err == unix.ESRCH {
			return false, nil
		}
		return false, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if !alive(pid, start) {
		return false, nil
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if err == unix.ESRCH {
			return false, nil
		}
		return false, fmt.Errorf("signal %d: %w", pid, err)
	}
	return true, nil
}

// waitProcessGone waits until pid (started at start) has exited, or the deadline of
// done fires. It uses a pidfd, which becomes readable when the process exits, so it
// also works for processes that are not our children.
func waitProcessGone(pid int, start uint64, timeoutMs int) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return true
	}
	defer unix.Close(fd)
	if !alive(pid, start) {
		return true
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, timeoutMs)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}

// reapWhenDone reaps the child pid once it exits, without a thread blocked in
// wait for each child (os.Process.Wait holds one): the pidfd goes on the Go
// poller, which wakes a goroutine when the child exits; a non-blocking waitid
// then collects it. done, when not nil, runs after the child is reaped.
func reapWhenDone(pid int, done func()) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid))
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return fmt.Errorf("pidfd %d: %w", pid, err)
	}
	go func() {
		defer f.Close()
		// Read fails only on a closed file, and f is closed only once it returns.
		_ = rc.Read(func(fd uintptr) bool {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG, nil)
			// Not exited yet (no error, no child reported): wait for the
			// pidfd to become readable and look again.
			return err != nil || info.Signo != 0
		})
		if done != nil {
			done()
		}
	}()
	return nil
}

// findProcess finds a live process running binary with the single argument arg
// (a monitor: nodekit-monitor <its config>) by its command line in /proc, and
// returns its pid and start time.
func findProcess(binary, arg string) (pid int, start uint64, ok bool) {
	procs, err := cmdline.Processes()
	if err != nil {
		return 0, 0, false
	}
	for _, p := range procs {
		if len(p.Args) != 2 || p.Args[0] != binary || p.Args[1] != arg {
			continue
		}
		if st, err := procStartTime(p.PID); err == nil {
			return p.PID, st, true
		}
	}
	return 0, 0, false
}
