package stats

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cadvisorapi "github.com/google/cadvisor/lib/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
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

const netRoute = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
ens3	00000000	0101A8C0	0003	0	0	100	00000000	0	0	0
ens3	0001A8C0	00000000	0001	0	0	100	00FFFFFF	0	0	0
`

func fullProc(t *testing.T) string {
	return fakeProc(t, map[string]string{
		"stat":                   "cpu  100 20 30 1000 50 5 5 7 0 0\nbtime 1700000000\nprocesses 4242\n",
		"1/net/route":            netRoute,
		"sys/kernel/pid_max":     "4194304\n",
		"sys/kernel/threads-max": "63000\n",
		"loadavg":                "0.10 0.20 0.30 2/345 6789\n",
	})
}

// fakeSource stands for cAdvisor: cgroups by name and the machine.
type fakeSource struct {
	mu      sync.Mutex
	cgroups map[string]fakeCgroup
	mi      *cadvisorapi.MachineInfo
	vi      *cadvisorapi.VersionInfo
}

type fakeCgroup struct {
	spec  cadvisorapi.ContainerSpec
	stats *cadvisorapi.ContainerStats
	err   error
}

func (f *fakeSource) cgroup(name string) (cadvisorapi.ContainerSpec, *cadvisorapi.ContainerStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cgroups[name]
	if !ok {
		return cadvisorapi.ContainerSpec{}, nil, errNoCgroup
	}
	return c.spec, c.stats, c.err
}

func (f *fakeSource) machine() (*cadvisorapi.MachineInfo, *cadvisorapi.VersionInfo, error) {
	if f.mi == nil {
		return nil, nil, errors.New("no machine info")
	}
	return f.mi, f.vi, nil
}

// setCPU sets a cgroup's cumulative CPU usage.
func (f *fakeSource) setCPU(name string, usage uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := *f.cgroups[name].stats
	st.Cpu = &cadvisorapi.CpuStats{Usage: cadvisorapi.CpuUsage{Total: usage}}
	c := f.cgroups[name]
	c.stats = &st
	f.cgroups[name] = c
}

const gib = 1 << 30

// rootCgroup is the root as cAdvisor's raw handler reports it: 8 GiB of
// memory, 1 GiB of swap, usage 6 GiB of which 1.5 GiB inactive file.
func rootCgroup() fakeCgroup {
	return fakeCgroup{
		spec: cadvisorapi.ContainerSpec{
			HasCpu: true, HasMemory: true, HasNetwork: true,
			Memory: cadvisorapi.MemorySpec{Limit: 8 * gib, SwapLimit: 1 * gib},
		},
		stats: &cadvisorapi.ContainerStats{
			Cpu: &cadvisorapi.CpuStats{Usage: cadvisorapi.CpuUsage{Total: 1_600_000_000}},
			Memory: &cadvisorapi.MemoryStats{
				Usage: 6 * gib, WorkingSet: 4.5 * gib, TotalInactiveFile: 1.5 * gib, RSS: 1 * gib, Swap: gib / 4,
				ContainerData: cadvisorapi.MemoryStatsMemoryData{Pgfault: 123456, Pgmajfault: 789},
			},
			Network: &cadvisorapi.NetworkStats{Interfaces: []cadvisorapi.InterfaceStats{
				{Name: "ens3", RxBytes: 1000000, RxErrors: 3, TxBytes: 500000, TxErrors: 4},
				{Name: "cni0", RxBytes: 4000, RxErrors: 1, TxBytes: 6000, TxErrors: 2},
			}},
		},
	}
}

func fakeNode(t *testing.T, o NodeOptions, src *fakeSource) *Node {
	if o.FsPath == "" {
		o.FsPath = t.TempDir()
	}
	n := NewNode(o)
	n.src = src
	return n
}

func TestNodeStats(t *testing.T) {
	src := &fakeSource{cgroups: map[string]fakeCgroup{"/": rootCgroup()}}
	fc := clocktesting.NewFakeClock(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	n := fakeNode(t, NodeOptions{NodeName: "node-a", ProcRoot: fullProc(t), Clock: fc}, src)
	ns, err := n.Stats()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what string
		got  *uint64
		want uint64
	}{
		{"cpu usageCoreNanoSeconds", ns.CPU.UsageCoreNanoSeconds, 1_600_000_000},
		{"memory usage", ns.Memory.UsageBytes, 6 * gib},
		{"memory workingSet", ns.Memory.WorkingSetBytes, 4.5 * gib},
		{"memory available (capacity − working set)", ns.Memory.AvailableBytes, 3.5 * gib},
		{"memory rss", ns.Memory.RSSBytes, 1 * gib},
		{"page faults", ns.Memory.PageFaults, 123456},
		{"major page faults", ns.Memory.MajorPageFaults, 789},
		{"swap usage", ns.Swap.SwapUsageBytes, gib / 4},
		{"swap available", ns.Swap.SwapAvailableBytes, gib * 3 / 4},
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
	if ns.CPU.PSI != nil || ns.Memory.PSI != nil || ns.IO != nil {
		t.Errorf("pressure without PSI figures: cpu %v, memory %v, io %v", ns.CPU.PSI, ns.Memory.PSI, ns.IO)
	}
	if ns.Network.Name != "ens3" {
		t.Errorf("default interface %q, want ens3 (the default route's)", ns.Network.Name)
	}
	var names []string
	for _, i := range ns.Network.Interfaces {
		names = append(names, i.Name)
	}
	if strings.Join(names, ",") != "ens3,cni0" {
		t.Errorf("interfaces %v, want ens3,cni0", names)
	}
	if ns.Rlimit.MaxPID == nil || *ns.Rlimit.MaxPID != 63000 || ns.Rlimit.NumOfRunningProcesses == nil || *ns.Rlimit.NumOfRunningProcesses != 345 {
		t.Errorf("rlimit = max %v, procs %v; want 63000 (threads-max is lower), 345", ns.Rlimit.MaxPID, ns.Rlimit.NumOfRunningProcesses)
	}
	if ns.Fs == nil || ns.Fs.CapacityBytes == nil || *ns.Fs.CapacityBytes == 0 || *ns.Fs.AvailableBytes > *ns.Fs.CapacityBytes {
		t.Errorf("fs = %+v, want the test directory's filesystem", ns.Fs)
	}
	if ns.SystemContainers != nil {
		t.Errorf("system containers %v without any configured", ns.SystemContainers)
	}

	// usageNanoCores comes from the CPU time between samples at least a second apart
	fc.Step(500 * time.Millisecond)
	src.setCPU("/", 2_100_000_000)
	if ns, _ = n.Stats(); ns.CPU.UsageNanoCores != nil {
		t.Errorf("usageNanoCores after 0.5s = %d, want none yet", *ns.CPU.UsageNanoCores)
	}
	fc.Step(1500 * time.Millisecond)
	src.setCPU("/", 3_600_000_000) // 2 CPU-seconds in 2s
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
	fc.Step(2 * time.Second)
	src.setCPU("/", 100) // counter reset (another cgroup): a new window
	if ns, _ = n.Stats(); ns.CPU.UsageNanoCores != nil {
		t.Errorf("usageNanoCores after the counter went back = %d, want none", *ns.CPU.UsageNanoCores)
	}
}

func TestNodeStatsWorkingSetAboveLimit(t *testing.T) {
	root := rootCgroup()
	root.stats.Memory.WorkingSet = 9 * gib // over the machine's 8 GiB: available is 0, not a wrapped uint64
	root.stats.Memory.Swap = 2 * gib
	ns, err := fakeNode(t, NodeOptions{ProcRoot: fullProc(t)}, &fakeSource{cgroups: map[string]fakeCgroup{"/": root}}).Stats()
	if err != nil {
		t.Fatal(err)
	}
	if deref(ns.Memory.AvailableBytes) != uint64(0) || deref(ns.Swap.SwapAvailableBytes) != uint64(0) {
		t.Errorf("available memory %v, swap %v; want 0, 0", deref(ns.Memory.AvailableBytes), deref(ns.Swap.SwapAvailableBytes))
	}
}

func TestNodeStatsPressure(t *testing.T) {
	root := rootCgroup()
	root.stats.Cpu.PSI = cadvisorapi.PSIStats{Some: cadvisorapi.PSIData{Total: 1000, Avg10: 1.5}}
	root.stats.Memory.PSI = cadvisorapi.PSIStats{Full: cadvisorapi.PSIData{Total: 20, Avg300: 0.25}, Some: cadvisorapi.PSIData{Total: 30}}
	root.stats.DiskIo = &cadvisorapi.DiskIoStats{PSI: cadvisorapi.PSIStats{Some: cadvisorapi.PSIData{Total: 7, Avg60: 2}}}
	ns, err := fakeNode(t, NodeOptions{ProcRoot: fullProc(t)}, &fakeSource{cgroups: map[string]fakeCgroup{"/": root}}).Stats()
	if err != nil {
		t.Fatal(err)
	}
	if p := ns.CPU.PSI; p == nil || p.Some.Total != 1000 || p.Some.Avg10 != 1.5 || p.Full.Total != 0 {
		t.Errorf("cpu psi = %+v", p)
	}
	if p := ns.Memory.PSI; p == nil || p.Full.Total != 20 || p.Full.Avg300 != 0.25 || p.Some.Total != 30 {
		t.Errorf("memory psi = %+v", p)
	}
	if ns.IO == nil || ns.IO.PSI == nil || ns.IO.PSI.Some.Total != 7 || ns.IO.PSI.Some.Avg60 != 2 {
		t.Errorf("io = %+v", ns.IO)
	}
}

func TestNodeStatsSystemContainers(t *testing.T) {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	pods := fakeCgroup{
		spec: cadvisorapi.ContainerSpec{CreationTime: created, HasCpu: true, HasMemory: true,
			Memory: cadvisorapi.MemorySpec{Limit: 6 * gib, SwapLimit: math.MaxUint64}},
		stats: &cadvisorapi.ContainerStats{
			Cpu:    &cadvisorapi.CpuStats{Usage: cadvisorapi.CpuUsage{Total: 42}},
			Memory: &cadvisorapi.MemoryStats{Usage: 3 * gib, WorkingSet: 2 * gib},
		},
	}
	kubelet := pods
	kubelet.spec.Memory.Limit = math.MaxUint64 // no limit: no availableBytes, as the kubelet
	src := &fakeSource{cgroups: map[string]fakeCgroup{"/": rootCgroup(), "/kubepods": pods, "/system.slice/nodekit.service": kubelet}}
	n := fakeNode(t, NodeOptions{ProcRoot: fullProc(t), SystemContainers: map[string]string{
		statsapi.SystemContainerPods:    "/kubepods",
		statsapi.SystemContainerKubelet: "/system.slice/nodekit.service",
		statsapi.SystemContainerRuntime: "/system.slice/missing.service",
		statsapi.SystemContainerMisc:    "",
	}}, src)
	ns, err := n.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.SystemContainers) != 2 || ns.SystemContainers[0].Name != "kubelet" || ns.SystemContainers[1].Name != "pods" {
		t.Fatalf("system containers %+v, want kubelet and pods (a missing cgroup and an empty name left out)", ns.SystemContainers)
	}
	p := ns.SystemContainers[1]
	if !p.StartTime.Time.Equal(created) || deref(p.CPU.UsageCoreNanoSeconds) != uint64(42) ||
		deref(p.Memory.UsageBytes) != uint64(3*gib) || deref(p.Memory.WorkingSetBytes) != uint64(2*gib) ||
		deref(p.Memory.AvailableBytes) != uint64(4*gib) {
		t.Errorf("pods = start %v, cpu %v, memory usage %v, working set %v, available %v; want limit − working set = 4 GiB available",
			p.StartTime, deref(p.CPU.UsageCoreNanoSeconds), deref(p.Memory.UsageBytes), deref(p.Memory.WorkingSetBytes), deref(p.Memory.AvailableBytes))
	}
	if p.Swap == nil || p.Swap.SwapAvailableBytes != nil {
		t.Errorf("pods swap = %+v, want usage only (no swap limit)", p.Swap)
	}
	if k := ns.SystemContainers[0]; k.Memory.AvailableBytes != nil {
		t.Errorf("kubelet availableBytes = %d without a memory limit", *k.Memory.AvailableBytes)
	}
}

func TestNodeStatsOptionalAndRequired(t *testing.T) {
	// with no /proc files: no start time, no rlimit figures, eth0 as the default interface
	root := rootCgroup()
	root.stats.Network.Interfaces[1].Name = "eth0"
	ns, err := fakeNode(t, NodeOptions{ProcRoot: t.TempDir()}, &fakeSource{cgroups: map[string]fakeCgroup{"/": root}}).Stats()
	if err != nil {
		t.Fatalf("Stats with an empty proc root: %v", err)
	}
	if !ns.StartTime.IsZero() || ns.Rlimit.MaxPID != nil || ns.Rlimit.NumOfRunningProcesses != nil {
		t.Errorf("figures from missing files: start %v, max pid %v, processes %v", ns.StartTime, ns.Rlimit.MaxPID, ns.Rlimit.NumOfRunningProcesses)
	}
	if ns.Network.Name != "eth0" || deref(ns.Network.RxBytes) != uint64(4000) {
		t.Errorf("default interface %q (rx %v) without a default route, want eth0", ns.Network.Name, deref(ns.Network.RxBytes))
	}
	root.stats.Network = nil
	if ns, _ = fakeNode(t, NodeOptions{}, &fakeSource{cgroups: map[string]fakeCgroup{"/": root}}).Stats(); ns.Network != nil {
		t.Errorf("network %+v without interfaces", ns.Network)
	}

	for _, tc := range []struct {
		name string
		src  *fakeSource
		fs   string
		want string
	}{
		{"no root cgroup", &fakeSource{}, "", "node CPU and memory (root cgroup)"},
		{"root cgroup error", &fakeSource{cgroups: map[string]fakeCgroup{"/": {err: errors.New("boom")}}}, "", "boom"},
		{"missing fs dir", &fakeSource{cgroups: map[string]fakeCgroup{"/": rootCgroup()}}, "/nonexistent/dir", "node filesystem /nonexistent/dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fakeNode(t, NodeOptions{FsPath: tc.fs}, tc.src).Stats()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Stats error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func deref(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}
