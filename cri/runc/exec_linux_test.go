package runc

import (
	"context"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A reaper that fails (after the runtime started the process, so the pid file
// exists) makes Exec return its message, not a bare exit code 255; a process that
// itself exits with 255 keeps its code. Shell scripts stand in for the reaper.
func TestExecReaperFailure(t *testing.T) {
	r, err := New(Options{Binary: "/bin/true", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, script string
		wantCode     int
		wantErr      string
	}{
		{"reaper fails", `echo 1 > "$1"; echo "nodekit-monitor reap: wait for process 1: no child processes" >&2; exit 255`, -1, "no child processes"},
		{"process exits 255", `echo 1 > "$1"; exit 255`, 255, ""},
		{"process exits 3", `echo 1 > "$1"; echo noise >&2; exit 3`, 3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := r.Exec(context.Background(), "c1", ExecOptions{
				Process:       &specs.Process{Args: []string{"true"}, Cwd: "/"},
				Dir:           t.TempDir(),
				ConsoleSocket: "/nonexistent/console.sock",
				Reaper:        []string{"/bin/sh", "-c", tc.script, "reaper"},
			})
			if code != tc.wantCode {
				t.Errorf("code = %d, want %d (err %v)", code, tc.wantCode, err)
			}
			if tc.wantErr == "" && err != nil {
				t.Errorf("err = %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
