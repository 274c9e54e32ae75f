package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestIsMonitorOf(t *testing.T) {
	const state = "/tmp/nkbench-1/nodekit/state"
	tests := []struct {
		name string
		args []string
		want bool
	}{
		{"ours", []string{"/work/main/bin/nodekit-monitor", state + "/containers/abc/monitor.json"}, true},
		{"state with slash", []string{"nodekit-monitor", state + "/containers/abc/monitor.json"}, true},
		{"another state dir sharing the prefix", []string{"nodekit-monitor", state + "2/containers/abc/monitor.json"}, false},
		{"another daemon", []string{"nodekit-monitor", "/run/nodekit/containers/abc/monitor.json"}, false},
		{"not a monitor", []string{"/bin/cat", state + "/containers/abc/monitor.json"}, false},
		{"no config", []string{"nodekit-monitor"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isMonitorOf(tt.args, state); got != tt.want {
				t.Errorf("isMonitorOf(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

func TestIsDaemonOf(t *testing.T) {
	const dir = "/tmp/nkbench-1"
	tests := []struct {
		name string
		args []string
		want bool
	}{
		{"nodekit-cri", []string{"/work/main/bin/nodekit-cri", "--listen", dir + "/nodekit/cri.sock", "--root", dir + "/nodekit/root"}, true},
		{"containerd", []string{"/usr/bin/containerd", "--config", dir + "/containerd/config.toml"}, true},
		{"with =", []string{"containerd", "--config=" + dir + "/containerd/config.toml"}, true},
		{"another workspace", []string{"/usr/bin/containerd", "--config", dir + "2/containerd/config.toml"}, false},
		{"another program", []string{"/bin/sleep", dir + "/x"}, false},
		{"no arguments", []string{"/usr/bin/containerd"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isDaemonOf(tt.args, dir); got != tt.want {
				t.Errorf("isDaemonOf(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

func TestParseStatPPID(t *testing.T) {
	tests := []struct {
		stat    string
		want    int
		wantErr bool
	}{
		{"1234 (sleep) S 77 1234 1234 0 -1", 77, false},
		{"1234 (a) b) (c) R 5 1 1", 5, false}, // command names may hold ") "
		{"1234 (x", 0, true},
		{"1234 (x) S", 0, true},
	}
	for _, tt := range tests {
		got, err := parseStatPPID(tt.stat)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseStatPPID(%q) = %d, %v; want %d, error %v", tt.stat, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSplitCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"/pause\x00", []string{"/pause"}},
		{"sleep\x003600\x00", []string{"sleep", "3600"}},
		{"a\x00\x00b\x00", []string{"a", "", "b"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := splitCmdline([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseSmapsRollup(t *testing.T) {
	const rollup = `55d7c5a00000-7ffd3b7fe000 ---p 00000000 00:00 0                          [rollup]
Rss:                3456 kB
Pss:                1234 kB
Pss_Dirty:           800 kB
Shared_Clean:        900 kB
`
	m, err := parseSmapsRollup(strings.NewReader(rollup))
	if err != nil {
		t.Fatal(err)
	}
	if m.Pss != 1234 || m.Rss != 3456 {
		t.Errorf("got %+v, want Pss 1234 and Rss 3456 (Pss_Dirty must not count)", m)
	}
	if _, err := parseSmapsRollup(strings.NewReader("Rss: 1 kB\n")); err == nil {
		t.Error("no Pss line: want an error")
	}
}

func TestMountsUnder(t *testing.T) {
	const mountinfo = `22 1 0:21 / /tmp rw - ext4 /dev/vda rw
30 22 0:40 / /tmp/nkbench-1/c/state/shm rw - tmpfs shm rw
31 22 0:41 / /tmp/nkbench-1/c/state/rootfs rw - overlay overlay rw
32 31 0:42 / /tmp/nkbench-1/c/state/rootfs/proc rw - proc proc rw
33 22 0:4 net:[4026532] /tmp/nkbench-1/c/state/netns/cni-1 rw - nsfs nsfs rw
34 22 0:43 / /tmp/nkbench-12/other rw - tmpfs tmpfs rw
35 22 0:44 / /tmp/nkbench-1/with\040space rw - tmpfs tmpfs rw
36 22 0:45 / /tmp/nkbench-1/c/state/shm rw - tmpfs shm rw
37 1 0:46 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
38 1 0:47 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
`
	mounts, err := parseMountinfo(strings.NewReader(mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	got := mountsUnder(mounts, "/tmp/nkbench-1")
	want := []string{
		"/tmp/nkbench-1/c/state/netns/cni-1", // deepest first; equally deep: the later mount first
		"/tmp/nkbench-1/c/state/rootfs/proc",
		"/tmp/nkbench-1/c/state/shm", // stacked twice: the upper one first
		"/tmp/nkbench-1/c/state/rootfs",
		"/tmp/nkbench-1/c/state/shm",
		"/tmp/nkbench-1/with space",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mountsUnder:\n got %q\nwant %q", got, want)
	}
	if got, want := cgroupMountPoints(mounts), []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cgroupMountPoints = %q, want %q", got, want)
	}
}

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 20; i >= 1; i-- { // 20..1 ms, unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := summarize(d)
	want := summary{N: 20, P50: 10 * time.Millisecond, P95: 19 * time.Millisecond, P99: 20 * time.Millisecond, Min: time.Millisecond, Max: 20 * time.Millisecond, Avg: 10500 * time.Microsecond}
	if s != want {
		t.Errorf("summarize(1..20 ms) = %+v, want %+v", s, want)
	}
	if d[0] != 20*time.Millisecond {
		t.Error("summarize sorted its input in place")
	}
	tests := []struct {
		n       int
		q       float64
		wantIdx int
	}{
		{1, 50, 0}, {1, 95, 0}, {30, 50, 14}, {30, 95, 28}, {31, 50, 15}, {2, 50, 0},
		{100, 99, 98}, {100, 50, 49}, {101, 99, 99},
	}
	for _, tt := range tests {
		sorted := make([]time.Duration, tt.n)
		for i := range sorted {
			sorted[i] = time.Duration(i)
		}
		if got := percentile(sorted, tt.q); got != time.Duration(tt.wantIdx) {
			t.Errorf("percentile(n=%d, %v) = index %d, want %d", tt.n, tt.q, got, tt.wantIdx)
		}
	}
	if (summarize(nil) != summary{}) {
		t.Error("summarize(nil) is not zero")
	}
}

func TestTable(t *testing.T) {
	var b strings.Builder
	table(&b, [][]string{{"runtime", "p50"}, {"nodekit", "1.0"}, {"containerd", "250.0"}})
	want := "| runtime    |   p50 |\n| ---------- | ----: |\n| nodekit    |   1.0 |\n| containerd | 250.0 |\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
