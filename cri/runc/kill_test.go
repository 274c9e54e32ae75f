package runc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Kill and Update run after a check the container can outlive: its process exits
// and its supervisor deletes it between the caller's look and the runtime's. A
// fake runtime plays each way that can end; the error must say which, so that a
// caller that only wants the container dead can treat "gone" and "stopped" as done
// (the critest flake of StopPodSandbox answering Internal "container does not exist").
func TestKillAndUpdateClassifyLateFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string // the fake runtime's body; $ROOT/c1 is the container's state
		want   error  // nil: no classified error at all
		failed bool
	}{
		{"deleted meanwhile", `rm -rf "$ROOT/c1"; echo 'level=error msg="container does not exist"' >&2; exit 1`, ErrNotExist, true},
		{"gone, other wording", `rm -rf "$ROOT/c1"; echo 'level=error msg="no such container"' >&2; exit 1`, ErrNotExist, true},
		{"stopped", `echo 'level=error msg="container not running"' >&2; exit 1`, ErrNotRunning, true},
		{"cgroup deleted meanwhile", `echo 'level=error msg="unable to kill all processes: lstat /sys/fs/cgroup/devices/p/c1: no such file or directory"' >&2; exit 1`, ErrNotRunning, true},
		{"real failure", `echo 'level=error msg="permission denied"' >&2; exit 1`, nil, true},
		{"success", `exit 0`, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			bin := filepath.Join(t.TempDir(), "fake-runc")
			script := "#!/bin/sh\nROOT=" + root + "\n" + tc.script + "\n"
			if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			r, err := New(Options{Binary: bin, Root: root})
			if err != nil {
				t.Fatal(err)
			}
			for _, call := range []struct {
				name string
				run  func() error
			}{
				{"kill", func() error { return r.Kill(context.Background(), "c1", syscall.SIGKILL, true) }},
				{"update", func() error { return r.Update(context.Background(), "c1", []byte(`{}`)) }},
			} {
				if err := os.MkdirAll(filepath.Join(root, "c1"), 0o700); err != nil {
					t.Fatal(err)
				}
				err := call.run()
				if (err != nil) != tc.failed {
					t.Fatalf("%s: err = %v, want failure %v", call.name, err, tc.failed)
				}
				classified := errors.Is(err, ErrNotExist) || errors.Is(err, ErrNotRunning)
				if tc.want == nil && classified {
					t.Errorf("%s: err = %v, want an unclassified error", call.name, err)
				}
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Errorf("%s: err = %v, want one wrapping %v", call.name, err, tc.want)
				}
			}
		})
	}
}
