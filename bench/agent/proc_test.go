package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses; fields after it as the kernel
	// writes them (pid 42, ppid 7, utime 1200, stime 300, cutime 15, cstime 5,
	// 23 threads).
	line := "42 (nodekit (x) y) S 7 42 42 0 -1 4194560 5000 0 0 0 1200 300 15 5 20 0 23 0 100 1000000 2000 18446744073709551615"
	got, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{state: "S", ppid: 7, utime: 1200, stime: 300, cutime: 15, cstime: 5, threads: 23}
	if got != want {
		t.Errorf("parseStat = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"42 nodekit S 7", "42 (x) S 7 1 2", "42 (x) S x 42 42 0 -1 4194560 5000 0 0 0 1200 300 15 5 20 0 23 0"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestParseSmapsRollup(t *testing.T) {
	in := `55d7c0000000-7ffc9b5fe000 ---p 00000000 00:00 0                          [rollup]
Rss:               33484 kB
Pss:               32370 kB
Pss_Anon:           9420 kB
Anonymous:          9420 kB
Swap:                  0 kB
`
	got, err := parseSmapsRollup(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := (memory{Rss: 33484, Pss: 32370, Anon: 9420}); got != want {
		t.Errorf("parseSmapsRollup = %+v, want %+v", got, want)
	}
	if _, err := parseSmapsRollup(strings.NewReader("Rss: 1 kB\n")); err == nil {
		t.Error("no Pss line: no error")
	}
}

func TestParseCtxSwitches(t *testing.T) {
	status := "Name:\tnodekit-kubelet\nThreads:\t12\nvoluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n"
	if got := parseCtxSwitches(status); got != 157 {
		t.Errorf("parseCtxSwitches = %d, want 157", got)
	}
}

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

func TestIsMonitorUnder(t *testing.T) {
	state := "/run/nodekit-kubelet/runtime"
	if !isMonitorUnder([]string{"/bin/nodekit-monitor", state + "/containers/abc/monitor.json"}, state) {
		t.Error("monitor of the state dir not recognised")
	}
	if isMonitorUnder([]string{"/bin/nodekit-monitor", "/run/nodekit-kubelet/runtime2/containers/abc/monitor.json"}, state) {
		t.Error("monitor of another state dir taken as ours")
	}
	if isMonitorUnder([]string{"/bin/nodekit-monitor", "pause", state + "/x"}, state) {
		t.Error("infra process taken as a container monitor")
	}
}

func TestMountsUnder(t *testing.T) {
	in := `20 1 0:20 / /tmp rw - tmpfs tmpfs rw
30 20 0:30 / /tmp/nkagent-1/a rw - overlay overlay rw
31 30 0:31 / /tmp/nkagent-1/a/b\040c rw - tmpfs shm rw
32 20 0:32 / /tmp/nkagent-12 rw - tmpfs tmpfs rw
33 20 0:33 / /tmp/nkagent-1/d rw - nsfs nsfs rw
40 1 0:40 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
`
	mounts, err := parseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	got := mountsUnder(mounts, "/tmp/nkagent-1")
	want := []string{"/tmp/nkagent-1/a/b c", "/tmp/nkagent-1/d", "/tmp/nkagent-1/a"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mountsUnder = %q, want %q", got, want)
	}
	if got := cgroupMountPoints(mounts); !reflect.DeepEqual(got, []string{"/sys/fs/cgroup/memory"}) {
		t.Errorf("cgroupMountPoints = %q", got)
	}
}

func TestSyscallName(t *testing.T) {
	for in, want := range map[string]string{
		"202 0xc000 0x80 0x0 0x0 0x0 0x0 0x7ffd 0x46a3e3\n": "futex",
		"247 0x3 0x5 0x0 0x4 0x0 0x0 0x7ffd 0x46a3e3\n":     "waitid",
		"running\n":       "running",
		"-1 0x7ffd 0x4\n": "other",
		"999 0x0 0x0 0x0": "syscall 999",
		"":                "?",
	} {
		if got := syscallName(in); got != want {
			t.Errorf("syscallName(%q) = %q, want %q", in, got, want)
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
