package monitor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The reap mode with shell scripts standing in for `runc exec -d`: the "runtime"
// leaves a process behind (it waits for the runtime to be gone, so that it is
// surely orphaned first) and writes its pid to the pid file.
func TestReapMode(t *testing.T) {
	const orphan = `rt=$$; ( while [ -e /proc/$rt ]; do :; done; %s ) & echo $! > "$PIDFILE"`
	for _, tc := range []struct {
		name, script string
		wantCode     int
		wantStderr   string
		wantPidFile  bool
	}{
		{"process exit code", strings.Replace(orphan, "%s", "exit 7", 1), 7, "", true},
		{"process success", strings.Replace(orphan, "%s", "exit 0", 1), 0, "", true},
		{"process killed", strings.Replace(orphan, "%s", `exec sh -c 'kill -9 $$'`, 1), 128 + 9, "", true},
		{"runtime fails", `echo "runtime says no" >&2; exit 3`, 3, "runtime says no", false},
		{"bad pid file", `echo nope > "$PIDFILE"`, 255, `holds "nope\n"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			cmd := exec.Command(monitorBinary(t), ReapArg, pidFile, "/bin/sh", "-c", tc.script)
			cmd.Env = append(os.Environ(), "PIDFILE="+pidFile)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("exit code %d, stderr %q; want %d and %q", code, stderr.String(), tc.wantCode, tc.wantStderr)
			}
			if _, err := os.Stat(pidFile); (err == nil) != tc.wantPidFile {
				t.Errorf("pid file exists: %v, want %v", err == nil, tc.wantPidFile)
			}
		})
	}
}

// zombieRuntimeEnv makes the test binary a stand-in for `runc exec -d` whose
// process exits before it does (see zombieRuntime).
const zombieRuntimeEnv = "NODEKIT_TEST_FAKE_RUNTIME"

// zombieRuntime is a Go program, multi-threaded like runc, that starts a process
// exiting with 7, writes its pid to $PIDFILE, waits until it is a zombie (it
// never reaps it) and exits: the process is handed to the reaper already dead.
func zombieRuntime() int {
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "exit 7"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(os.Getenv("PIDFILE"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		if i := strings.LastIndexByte(string(data), ')'); i > 0 && strings.HasPrefix(string(data[i+1:]), " Z") {
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, "the process did not become a zombie")
	return 1
}

// A process that exits before the runtime does reaches the reaper as a zombie
// together with the runtime, and the kernel may report it first: its status
// must not be lost (it was, about once in a hundred terminal execs, as 255).
func TestReapModeProcessExitsBeforeRuntime(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		pidFile := filepath.Join(t.TempDir(), "pid")
		cmd := exec.Command(monitorBinary(t), ReapArg, pidFile, self)
		cmd.Env = append(os.Environ(), "PIDFILE="+pidFile, zombieRuntimeEnv+"=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 7 {
			t.Fatalf("run %d: %v (stderr %q), want exit code 7", i, err, stderr.String())
		}
	}
}

func TestReapModeUsage(t *testing.T) {
	out, err := exec.Command(monitorBinary(t), ReapArg, "/tmp/pid").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "usage: nodekit-monitor reap") {
		t.Fatalf("reap without a command: %v, %q", err, out)
	}
}
