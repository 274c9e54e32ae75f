package monitor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// reapMain is the monitor binary's reap mode (`nodekit-monitor reap PIDFILE
// RUNTIME ARGS...`, see ReapArg): it runs the runtime command as a child
// subreaper, so that the process a detached `runc exec -d` leaves behind becomes
// its child, waits for that process (its pid is in PIDFILE) and exits with its
// status. When the runtime fails, it exits with the runtime's status.
//
// It keeps the signal dispositions it was started with: ignored signals would be
// inherited by the runtime and the process it starts.
func reapMain(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nodekit-monitor reap PIDFILE RUNTIME [ARGS...]")
		return 2
	}
	pidFile, argv := args[0], args[1:]
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "nodekit-monitor reap: become child subreaper: %v\n", err)
		return 255
	}
	runtimePid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "nodekit-monitor reap: run %s: %v\n", argv[0], err)
		return 255
	}
	// Wait for the runtime alone: the process it started is handed to this
	// subreaper when the runtime exits, and if it has already exited too, its
	// status may be reported before the runtime's; reaping any child here would
	// lose it.
	ws, err := waitPid(runtimePid)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nodekit-monitor reap: %v\n", err)
		return 255
	}
	if code := statusCode(ws); code != 0 {
		return code
	}
	data, err := os.ReadFile(pidFile)
	pid := 0
	if err == nil {
		pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	if err != nil || pid <= 0 {
		fmt.Fprintf(os.Stderr, "nodekit-monitor reap: the runtime succeeded but its pid file %s holds %q (%v)\n", pidFile, data, err)
		return 255
	}
	if ws, err = waitChild(pid); err != nil {
		fmt.Fprintf(os.Stderr, "nodekit-monitor reap: %v\n", err)
		return 255
	}
	return statusCode(ws)
}

// waitPid reaps pid, and only pid, and returns its status.
func waitPid(pid int) (unix.WaitStatus, error) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for process %d: %w", pid, err)
		}
		return ws, nil
	}
}

// waitChild reaps children until pid exits, and returns its status.
func waitChild(pid int) (unix.WaitStatus, error) {
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case err == unix.EINTR:
		case err != nil:
			return 0, fmt.Errorf("wait for process %d: %w", pid, err)
		case wpid == pid:
			return ws, nil
		}
	}
}

// statusCode is a shell-style exit code: the exit status, or 128+signal.
func statusCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
