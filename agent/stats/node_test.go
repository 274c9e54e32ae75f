package stats

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeProc writes a /proc tree with the given files (path relative to the root).
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// statFile has busy ticks user+nice+system+irq+softirq = 100+20+30+5+5 = 160.
func statFile(user int) string {
	return "cpu  " + strconv.Itoa(user) + " 20 30 1000 50 5 5 7 0 0\n" +
		"cpu0 50 10 15 500 25 2 3 3 0 0\n" +
		"intr 12345\nctxt 999\nbtime 1700000000\nprocesses 4242\n"
}

const meminfo = `MemTotal:        8000000 kB
MemFree:         2000000 kB
MemAvailable:    5000000 kB
Buffers:          100000 kB
Cached:          3000000 kB
Active(file):    1000000 kB
Inactive(file):  1500000 kB
AnonPages:        900000 kB
SwapTotal:       1000000 kB
SwapFree:         750000 kB
`

const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  999999     100    0    0    0     0          0         0   999999     100    0    0    0     0       0          0
  ens3: 1000000    2000    3    0    0     0          0         0   500000    1500    4    0    0     0       0          0
vethabc:   7777      10    0    0    0     0          0         0     8888      11    0    0    0     0       0          0
 cni0:    4000      40    1    0    0     0          0         0     6000      60    2    0    0     0       0          0
`

const netRoute = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
ens3	00000000	0101A8C0	0003	0	0	100	00000000	0	0	0
ens3	0001A8C0	00000000	0001	0	0	100	00FFFFFF	0	0	0
`

func fullProc(t *testing.T) string {
	return fakeProc(t, map[string]string{
		"stat":                   statFile(100),
		"meminfo":                meminfo,
		"vmstat":                 "nr_free_pages 500000\npgfault 123456\npgmajfault 789\n",
		"net/dev":                netDev,
		"net/route":              netRoute,
		"sys/kernel/pid_max":     "4194304\n",
		"sys/kernel/threads-max": "63000\n",
		"loadavg":                "0.10 0.20 0.30 2/345 6789\n",
	})
}

func TestNodeStats(t *testing.T) {
	root := fullProc(t)
	fc := clocktesting.NewFakeClock(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	n := NewNode(NodeOptions{NodeName: "node-a", ProcRoot: root, FsPath: t.TempDir(), Clock: fc})
	ns, err := n.Stats()
	if err != nil {
		t.Fatal(err)
	}
	const kib = 1024
	checks := []struct {
		what string
		got  *uint64
		want uint64
	}{
		{"cpu usageCoreNanoSeconds", ns.CPU.UsageCoreNanoSeconds, 160 * 10_000_000},
		{"memory usage", ns.Memory.UsageBytes, 6000000 * kib},
		{"memory workingSet", ns.Memory.WorkingSetBytes, 4500000 * kib},
		{"memory available", ns.Memory.AvailableBytes, 3500000 * kib},
		{"memory rss", ns.Memory.RSSBytes, 900000 * kib},
		{"page faults", ns.Memory.PageFaults, 123456},
		{"major page faults", ns.Memory.MajorPageFaults, 789},
		{"swap usage", ns.Swap.SwapUsageBytes, 250000 * kib},
		{"swap available", ns.Swap.SwapAvailableBytes, 750000 * kib},
		{"default interface rx", ns.Network.RxBytes, 1000000},
		{"default interface tx errors", ns.Network.TxErrors, 4},
	}
	for _, c := range checks {
		if c.got == nil || *c.got != c.want {
			t.Errorf("%s = %v, want %d", c.what, deref(c.got), c.want)
		}
	}
	boot := metav1.NewTime(time.Unix(1700000000, 0))
	if ns.NodeName != "node-a" || !ns.StartTime.Equal(&boot) {
		t.Errorf("node name %q, start time %v", ns.NodeName, ns.StartTime)
	}
	if ns.CPU.UsageNanoCores != nil {
		t.Errorf("usageNanoCores on the first sample = %d, want none", *ns.CPU.UsageNanoCores)
	}
	if ns.Network.Name != "ens3" {
		t.Errorf("default interface %q, want ens3 (the default route's)", ns.Network.Name)
	}
	var names []string
	for _, i := range ns.Network.Interfaces {
		names = append(names, i.Name)
	}
	if strings.Join(names, ",") != "ens3,cni0" {
		t.Errorf("interfaces %v, want ens3,cni0 (lo and veth left out)", names)
	}
	if ns.Rlimit.MaxPID == nil || *ns.Rlimit.MaxPID != 63000 || ns.Rlimit.NumOfRunningProcesses == nil || *ns.Rlimit.NumOfRunningProcesses != 345 {
		t.Errorf("rlimit = max %v, procs %v; want 63000 (threads-max is lower), 345", ns.Rlimit.MaxPID, ns.Rlimit.NumOfRunningProcesses)
	}
	if ns.Fs == nil || ns.Fs.CapacityBytes == nil || *ns.Fs.CapacityBytes == 0 || *ns.Fs.AvailableBytes > *ns.Fs.CapacityBytes {
		t.Errorf("fs = %+v, want the test directory's filesystem", ns.Fs)
	}

	// usageNanoCores comes from the CPU time between samples at least a second apart
	fc.Step(500 * time.Millisecond)
	os.WriteFile(filepath.Join(root, "stat"), []byte(statFile(150)), 0o644)
	if ns, _ = n.Stats(); ns.CPU.UsageNanoCores != nil {
		t.Errorf("usageNanoCores after 0.5s = %d, want none yet", *ns.CPU.UsageNanoCores)
	}
	fc.Step(1500 * time.Millisecond)
	os.WriteFile(filepath.Join(root, "stat"), []byte(statFile(300)), 0o644) // +200 ticks = 2 CPU-seconds in 2s
	ns, err = n.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if ns.CPU.UsageNanoCores == nil || *ns.CPU.UsageNanoCores != 1_000_000_000 {
		t.Errorf("usageNanoCores = %v, want 1e9 (one core)", deref(ns.CPU.UsageNanoCores))
	}
	fc.Step(100 * time.Millisecond) // within the window: the last rate again
	if ns, _ = n.Stats(); ns.CPU.UsageNanoCores == nil || *ns.CPU.UsageNanoCores != 1_000_000_000 {
		t.Errorf("usageNanoCores within the window = %v, want the last rate", deref(ns.CPU.UsageNanoCores))
	}
}

func TestNodeStatsOptionalAndRequiredFiles(t *testing.T) {
	minimal := fakeProc(t, map[string]string{"stat": statFile(1), "meminfo": meminfo})
	ns, err := NewNode(NodeOptions{ProcRoot: minimal, FsPath: t.TempDir()}).Stats()
	if err != nil {
		t.Fatalf("Stats with only stat and meminfo: %v", err)
	}
	if ns.Network != nil || ns.Memory.PageFaults != nil || ns.Rlimit.MaxPID != nil {
		t.Errorf("figures from missing files: network %v, page faults %v, max pid %v", ns.Network, ns.Memory.PageFaults, ns.Rlimit.MaxPID)
	}

	for _, tc := range []struct {
		name  string
		files map[string]string
		fs    string
		want  string
	}{
		{"no stat", map[string]string{"meminfo": meminfo}, "", "node CPU"},
		{"no cpu line", map[string]string{"stat": "btime 1\n", "meminfo": meminfo}, "", "no cpu line"},
		{"bad cpu field", map[string]string{"stat": "cpu 1 x 3 4 5 6 7 8\n", "meminfo": meminfo}, "", "field 2"},
		{"no meminfo", map[string]string{"stat": statFile(1)}, "", "node memory"},
		{"missing fs dir", map[string]string{"stat": statFile(1), "meminfo": meminfo}, "/nonexistent/dir", "node filesystem /nonexistent/dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := tc.fs
			if fs == "" {
				fs = t.TempDir()
			}
			_, err := NewNode(NodeOptions{ProcRoot: fakeProc(t, tc.files), FsPath: fs}).Stats()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Stats error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestNodeStatsRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	ns, err := NewNode(NodeOptions{}).Stats()
	if err != nil {
		t.Fatal(err)
	}
	if *ns.CPU.UsageCoreNanoSeconds == 0 || *ns.Memory.WorkingSetBytes == 0 || *ns.Fs.CapacityBytes == 0 {
		t.Errorf("implausible node stats: cpu %d, working set %d, fs capacity %d",
			*ns.CPU.UsageCoreNanoSeconds, *ns.Memory.WorkingSetBytes, *ns.Fs.CapacityBytes)
	}
}

func deref(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}
