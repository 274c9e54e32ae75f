package cri

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/cgstats"
)

const sampleNetDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
  eth0: 1234567     890    2    3    0     0          0         0    76543     210    4    5    0     0       0          0
 dummy0:       0       0    0    0    0     0          0         0      420       6    0    0    0     0       0          0
`

func TestParseNetDevAndNetworkUsage(t *testing.T) {
	ifaces, err := parseNetDev([]byte(sampleNetDev))
	if err != nil {
		t.Fatal(err)
	}
	want := []ifaceStats{
		{name: "lo", rxBytes: 840, rxPackets: 10, txBytes: 840, txPackets: 10},
		{name: "eth0", rxBytes: 1234567, rxPackets: 890, rxErrs: 2, rxDrop: 3, txBytes: 76543, txPackets: 210, txErrs: 4, txDrop: 5},
		{name: "dummy0", txBytes: 420, txPackets: 6},
	}
	if len(ifaces) != len(want) {
		t.Fatalf("parsed %d interfaces, want %d: %+v", len(ifaces), len(want), ifaces)
	}
	for i := range want {
		if ifaces[i] != want[i] {
			t.Errorf("interface %d = %+v, want %+v", i, ifaces[i], want[i])
		}
	}

	at := time.Unix(100, 0)
	n := networkUsage(ifaces, at)
	if n.Timestamp != at.UnixNano() || len(n.Interfaces) != 2 {
		t.Fatalf("network usage = %v (loopback must be left out)", n)
	}
	if d := n.DefaultInterface; d.GetName() != "eth0" || d.GetRxBytes().GetValue() != 1234567 || d.GetTxErrors().GetValue() != 4 || d.GetRxErrors().GetValue() != 2 || d.GetTxBytes().GetValue() != 76543 {
		t.Errorf("default interface = %v", d)
	}
	// Without eth0 the first interface is the default; with none there is none.
	if n := networkUsage(ifaces[2:], at); n.DefaultInterface.GetName() != "dummy0" {
		t.Errorf("default interface without eth0 = %v", n.DefaultInterface)
	}
	if n := networkUsage(ifaces[:1], at); n.DefaultInterface != nil || len(n.Interfaces) != 0 {
		t.Errorf("loopback only: %v", n)
	}

	for _, bad := range []string{
		sampleNetDev + "  eth1: 1 2 3\n",
		sampleNetDev + "garbage line\n",
		sampleNetDev + "  eth1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n",
	} {
		if _, err := parseNetDev([]byte(bad)); err == nil {
			t.Errorf("parseNetDev accepted %q", bad[len(sampleNetDev):])
		}
	}
}

func TestMergeResources(t *testing.T) {
	old := &runtime.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 256, MemoryLimitInBytes: 64 << 20,
		MemorySwapLimitInBytes: 128 << 20, OomScoreAdj: 500, CpusetCpus: "0",
		Unified: map[string]string{"memory.high": "1"},
	}
	for _, c := range []struct {
		name   string
		old    *runtime.LinuxContainerResources
		update *runtime.LinuxContainerResources
		check  func(*runtime.LinuxContainerResources) bool
	}{
		{"empty update keeps all", old, &runtime.LinuxContainerResources{}, func(r *runtime.LinuxContainerResources) bool {
			return r.CpuQuota == 50000 && r.MemoryLimitInBytes == 64<<20 && r.MemorySwapLimitInBytes == 128<<20 && r.OomScoreAdj == 500 && r.CpusetCpus == "0"
		}},
		{"cpu fields replace", old, &runtime.LinuxContainerResources{CpuQuota: 20000, CpuShares: 1024, CpusetCpus: "1"}, func(r *runtime.LinuxContainerResources) bool {
			return r.CpuQuota == 20000 && r.CpuShares == 1024 && r.CpuPeriod == 100000 && r.CpusetCpus == "1"
		}},
		{"new limit drops the old swap limit", old, &runtime.LinuxContainerResources{MemoryLimitInBytes: 256 << 20}, func(r *runtime.LinuxContainerResources) bool {
			return r.MemoryLimitInBytes == 256<<20 && r.MemorySwapLimitInBytes == 0
		}},
		{"limit and swap", old, &runtime.LinuxContainerResources{MemoryLimitInBytes: 256 << 20, MemorySwapLimitInBytes: 512 << 20}, func(r *runtime.LinuxContainerResources) bool {
			return r.MemoryLimitInBytes == 256<<20 && r.MemorySwapLimitInBytes == 512<<20
		}},
		{"oom score is kept", old, &runtime.LinuxContainerResources{OomScoreAdj: -100}, func(r *runtime.LinuxContainerResources) bool {
			return r.OomScoreAdj == 500
		}},
		{"unified keys merge", old, &runtime.LinuxContainerResources{Unified: map[string]string{"cpu.weight": "5"}}, func(r *runtime.LinuxContainerResources) bool {
			return r.Unified["memory.high"] == "1" && r.Unified["cpu.weight"] == "5"
		}},
		{"no old resources", nil, &runtime.LinuxContainerResources{CpuShares: 3}, func(r *runtime.LinuxContainerResources) bool {
			return r.CpuShares == 3 && r.MemoryLimitInBytes == 0
		}},
	} {
		got := mergeResources(c.old, c.update)
		if !c.check(got) {
			t.Errorf("%s: merged = %v", c.name, got)
		}
	}
	if old.CpuQuota != 50000 || len(old.Unified) != 1 {
		t.Errorf("merge changed the old resources: %v", old)
	}
}

func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	if b, n := diskUsage(filepath.Join(dir, "missing")); b != 0 || n != 0 {
		t.Errorf("missing dir uses %d bytes, %d inodes", b, n)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "sub", "big")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	before, inodes := diskUsage(dir)
	if before < 1<<20 || inodes != 3 {
		t.Fatalf("dir, sub, 1 MiB file: %d bytes, %d inodes", before, inodes)
	}
	// A hard link adds a name, not an inode or blocks.
	if err := os.Link(big, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if after, n := diskUsage(dir); after != before || n != 3 {
		t.Errorf("after a hard link: %d bytes, %d inodes; want %d, 3", after, n, before)
	}
}

// Every metric is described, with as many label values as its descriptor has
// keys: the kubelet drops metrics that do not match.
func TestMetricsMatchDescriptors(t *testing.T) {
	desc := map[string]*runtime.MetricDescriptor{}
	for _, d := range metricDescriptors {
		if desc[d.Name] != nil {
			t.Errorf("descriptor %s listed twice", d.Name)
		}
		desc[d.Name] = d
	}
	st := &cgstats.Stats{Timestamp: time.Unix(5, 0), CPU: cgstats.CPU{UsageNanos: 3_500_000_000}, Memory: cgstats.Memory{WorkingSet: 42}}
	ms := cgroupMetrics("c1", "web", st)
	ifaces, _ := parseNetDev([]byte(sampleNetDev))
	ms = append(ms, networkMetrics("p1", "pod", ifaces, time.Unix(5, 0))...)
	ms = append(ms, metricBuilder{labels: []string{"c1", "web", "/var"}}.all(gauge("container_fs_usage_bytes", 1), gauge("container_fs_inodes_used", 1))...)
	seen := map[string]bool{}
	for _, m := range ms {
		d := desc[m.Name]
		if d == nil {
			t.Errorf("metric %s has no descriptor", m.Name)
			continue
		}
		if len(m.LabelValues) != len(d.LabelKeys) {
			t.Errorf("metric %s has labels %v for keys %v", m.Name, m.LabelValues, d.LabelKeys)
		}
		seen[m.Name] = true
		switch m.Name {
		case "container_cpu_usage_seconds_total":
			if m.Value.Value != 3 || m.MetricType != runtime.MetricType_COUNTER || m.Timestamp != time.Unix(5, 0).UnixNano() {
				t.Errorf("cpu usage metric = %v", m)
			}
		case "container_memory_working_set_bytes":
			if m.Value.Value != 42 || m.MetricType != runtime.MetricType_GAUGE {
				t.Errorf("working set metric = %v", m)
			}
		}
	}
	for name := range desc {
		if !seen[name] {
			t.Errorf("descriptor %s is never reported", name)
		}
	}
	// Loopback is not reported; eth0 and dummy0 are.
	if n := len(networkMetrics("p1", "pod", ifaces, time.Now())); n != 2*8 {
		t.Errorf("%d network metrics, want 16", n)
	}
}

// fakeCgroups returns queued samples.
type fakeCgroups struct{ samples []*cgstats.Stats }

func (f *fakeCgroups) Stat(string) (*cgstats.Stats, error) {
	if len(f.samples) == 0 {
		return nil, cgstats.ErrNotFound
	}
	s := f.samples[0]
	f.samples = f.samples[1:]
	return s, nil
}

func (*fakeCgroups) Version() int { return 2 }

// usageNanoCores is computed over at least minRateWindow; calls in between get
// the last full window's rate.
func TestSampleRateWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration, cpu uint64) *cgstats.Stats {
		return &cgstats.Stats{Timestamp: t0.Add(d), CPU: cgstats.CPU{UsageNanos: cpu}}
	}
	f := &fakeCgroups{}
	st := &statsState{cgroups: f, prev: map[string]*cpuWindow{}}
	for i, c := range []struct {
		sample *cgstats.Stats
		want   int64 // -1: no rate
	}{
		{at(0, 0), -1},                                // first sample
		{at(300*time.Millisecond, 300e6), -1},         // too soon: no full window yet
		{at(2*time.Second, 1e9), 500e6},               // 1e9 ns over 2 s
		{at(2100*time.Millisecond, 1.1e9), 500e6},     // too soon: the last rate
		{at(4*time.Second, 3e9), 1e9},                 // 2e9 ns over 2 s
		{at(4500*time.Millisecond, 1e6), -1},          // counter reset: a new base
		{at(5500*time.Millisecond, 250e6+1e6), 250e6}, // rate from the new base
	} {
		f.samples = append(f.samples, c.sample)
		_, rate, err := st.sample("c1", "/c1")
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case c.want < 0 && rate != nil:
			t.Errorf("sample %d: rate %d, want none", i, *rate)
		case c.want >= 0 && (rate == nil || *rate != uint64(c.want)):
			t.Errorf("sample %d: rate %v, want %d", i, rate, c.want)
		}
	}
	if _, _, err := st.sample("c1", "/c1"); err == nil {
		t.Error("sample of a missing cgroup succeeded")
	}
}
