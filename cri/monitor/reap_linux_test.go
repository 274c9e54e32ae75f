package monitor

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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

func TestReapModeUsage(t *testing.T) {
	out, err := exec.Command(monitorBinary(t), ReapArg, "/tmp/pid").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "usage: nodekit-monitor reap") {
		t.Fatalf("reap without a command: %v, %q", err, out)
	}
}
