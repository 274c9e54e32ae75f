package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestIsEmbeddedKubelet(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"/work/bin/nodekit-kubelet", "--root-dir", "/tmp/x"}, true},
		{[]string{"nodekit-kubelet"}, true},
		{[]string{"nodekit-kubelet", "get", "pods"}, false},
		{[]string{"nodekit-kubelet", "import", "a.tar"}, false},
		{[]string{"nodekit-kubelet", "--container-runtime-endpoint", "unix:///run/containerd/containerd.sock"}, false},
		{[]string{"nodekit-kubelet", "--container-runtime-endpoint=unix:///x.sock"}, false},
		{[]string{"nodekit-cri", "--listen", "/x"}, false},
		{nil, false},
	} {
		if got := isEmbeddedKubelet(tc.args); got != tc.want {
			t.Errorf("isEmbeddedKubelet(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestFormatCounts(t *testing.T) {
	got := formatCounts(map[string]int{"futex": 3, "waitid": 100, "epoll_pwait": 1, "read": 3})
	if want := "waitid 100, futex 3, read 3, epoll_pwait 1"; got != want {
		t.Errorf("formatCounts = %q, want %q", got, want)
	}
}

func TestObjectsIn(t *testing.T) {
	state := t.TempDir()
	if got := objectsIn(state); got != "" {
		t.Errorf("empty state: objectsIn = %q", got)
	}
	for _, d := range []string{"sandboxes/s1", "containers/c1", "containers/c2", "runc/c1", "trash/x", "exits"} {
		if err := os.MkdirAll(filepath.Join(state, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := objectsIn(state), "containers 2, runc containers 1, sandboxes 1"; got != want {
		t.Errorf("objectsIn = %q, want %q", got, want)
	}
}

func TestSandboxPods(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, "sandboxes", "0123456789abcdef")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := `{"id":"0123456789abcdef","labels":{"io.kubernetes.pod.name": "idle-042-nkbench","io.kubernetes.pod.uid":"u"}}`
	if err := os.WriteFile(filepath.Join(dir, "sandbox.json"), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	got := sandboxPods(state)
	if want := []string{"idle-042-nkbench (sandbox 0123456789ab)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sandboxPods = %q, want %q", got, want)
	}
}
