package stats

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

var (
	tNow  = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	tSb   = tNow.Add(-time.Hour)
	tCtr  = tNow.Add(-30 * time.Minute)
	tStat = tNow.Add(-time.Second)
)

func u64(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }

func sandbox(id, ns, name, uid string, ready bool, created time.Time) *runtimeapi.PodSandbox {
	st := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	if ready {
		st = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return &runtimeapi.PodSandbox{Id: id, State: st, CreatedAt: created.UnixNano(),
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: ns, Uid: uid}}
}

func container(id, sandboxID, name string, running bool) *runtimeapi.Container {
	st := runtimeapi.ContainerState_CONTAINER_EXITED
	if running {
		st = runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	return &runtimeapi.Container{Id: id, PodSandboxId: sandboxID, State: st, CreatedAt: tCtr.UnixNano(),
		Metadata: &runtimeapi.ContainerMetadata{Name: name}}
}

func ctrStats(id, name string, cpuNanos, workingSet, layer uint64, mountpoint string) *runtimeapi.ContainerStats {
	return &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name}},
		Cpu:        &runtimeapi.CpuUsage{Timestamp: tStat.UnixNano(), UsageCoreNanoSeconds: u64(cpuNanos), UsageNanoCores: u64(cpuNanos / 100)},
		Memory: &runtimeapi.MemoryUsage{Timestamp: tStat.UnixNano(), WorkingSetBytes: u64(workingSet), UsageBytes: u64(workingSet + 10),
			RssBytes: u64(workingSet / 2), PageFaults: u64(7), MajorPageFaults: u64(1)},
		WritableLayer: &runtimeapi.FilesystemUsage{Timestamp: tStat.UnixNano(), UsedBytes: u64(layer), InodesUsed: u64(3),
			FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: mountpoint}},
	}
}

func val(p *uint64) uint64 {
	if p == nil {
		return ^uint64(0) // "missing", distinct from any figure in these tests
	}
	return *p
}

func TestFromCRISandboxStats(t *testing.T) {
	layers := t.TempDir()
	in := CRIStats{
		Sandboxes: []*runtimeapi.PodSandbox{
			sandbox("sb-old", "default", "web", "uid-web-old", false, tSb.Add(-time.Hour)), // replaced by the ready one
			sandbox("sb-web", "default", "web", "uid-web", true, tSb),
			sandbox("sb-gone", "default", "gone", "uid-gone", false, tSb), // no stats: not listed
		},
		Containers: []*runtimeapi.Container{
			container("c-nginx", "sb-web", "nginx", true),
			container("c-side", "sb-web", "sidecar", true),
			container("c-init", "sb-web", "init", false), // exited: not listed
		},
		SandboxStats: []*runtimeapi.PodSandboxStats{{
			Attributes: &runtimeapi.PodSandboxAttributes{Id: "sb-web"},
			Linux: &runtimeapi.LinuxPodSandboxStats{
				Cpu:    &runtimeapi.CpuUsage{Timestamp: tStat.UnixNano(), UsageCoreNanoSeconds: u64(5000), UsageNanoCores: u64(50)},
				Memory: &runtimeapi.MemoryUsage{Timestamp: tStat.UnixNano(), WorkingSetBytes: u64(4096), AvailableBytes: u64(1 << 20)},
				Network: &runtimeapi.NetworkUsage{Timestamp: tStat.UnixNano(),
					DefaultInterface: &runtimeapi.NetworkInterfaceUsage{Name: "eth0", RxBytes: u64(100), TxBytes: u64(200)},
					Interfaces:       []*runtimeapi.NetworkInterfaceUsage{{Name: "eth0", RxBytes: u64(100), TxBytes: u64(200)}}},
				Process: &runtimeapi.ProcessUsage{ProcessCount: u64(3)},
				Containers: []*runtimeapi.ContainerStats{
					ctrStats("c-side", "sidecar", 2000, 1024, 300, layers),
					ctrStats("c-nginx", "nginx", 3000, 2048, 700, layers),
					ctrStats("c-init", "init", 1, 1, 1, layers),
				},
			},
		}},
	}
	got := FromCRI(in, PodOptions{Now: tNow})
	if len(got) != 1 {
		t.Fatalf("FromCRI listed %d pods, want 1: %+v", len(got), got)
	}
	ps := got[0]
	if ps.PodRef != (statsapi.PodReference{Name: "web", Namespace: "default", UID: "uid-web"}) || !ps.StartTime.Time.Equal(tSb) {
		t.Errorf("pod ref %+v, start %v", ps.PodRef, ps.StartTime)
	}
	for _, c := range []struct {
		what      string
		got, want uint64
	}{
		{"pod cpu (from the sandbox)", val(ps.CPU.UsageCoreNanoSeconds), 5000},
		{"pod nanocores", val(ps.CPU.UsageNanoCores), 50},
		{"pod working set", val(ps.Memory.WorkingSetBytes), 4096},
		{"pod available", val(ps.Memory.AvailableBytes), 1 << 20},
		{"pod rx", val(ps.Network.RxBytes), 100},
		{"pod interfaces", uint64(len(ps.Network.Interfaces)), 1},
		{"pod processes", val(ps.ProcessStats.ProcessCount), 3},
		{"containers (running only)", uint64(len(ps.Containers)), 2},
		{"ephemeral used (layers)", val(ps.EphemeralStorage.UsedBytes), 1000},
		{"ephemeral inodes", val(ps.EphemeralStorage.InodesUsed), 6},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	nginx := ps.Containers[0]
	if nginx.Name != "nginx" || ps.Containers[1].Name != "sidecar" {
		t.Fatalf("containers %q, %q; want nginx, sidecar (by name)", nginx.Name, ps.Containers[1].Name)
	}
	if !nginx.StartTime.Time.Equal(tCtr) || !nginx.CPU.Time.Time.Equal(tStat) {
		t.Errorf("nginx start %v, cpu time %v", nginx.StartTime, nginx.CPU.Time)
	}
	if val(nginx.CPU.UsageCoreNanoSeconds) != 3000 || val(nginx.CPU.UsageNanoCores) != 30 ||
		val(nginx.Memory.WorkingSetBytes) != 2048 || val(nginx.Memory.UsageBytes) != 2058 || val(nginx.Memory.RSSBytes) != 1024 ||
		val(nginx.Memory.PageFaults) != 7 || val(nginx.Rootfs.UsedBytes) != 700 || val(nginx.Rootfs.InodesUsed) != 3 {
		t.Errorf("nginx stats: cpu %+v memory %+v rootfs %+v", nginx.CPU, nginx.Memory, nginx.Rootfs)
	}
	if nginx.Rootfs.CapacityBytes == nil || *nginx.Rootfs.CapacityBytes == 0 {
		t.Errorf("rootfs capacity from the layer mountpoint: %v", nginx.Rootfs.CapacityBytes)
	}
	if nginx.Logs != nil {
		t.Errorf("log stats without PodLogsDir: %+v", nginx.Logs)
	}
}

func TestFromCRIContainerStatsOnly(t *testing.T) {
	logs := t.TempDir()
	logDir := filepath.Join(logs, "kube-system_dns_uid-dns", "coredns")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logDir, "0.log"), make([]byte, 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	bare := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{Id: "c-bare", Metadata: &runtimeapi.ContainerMetadata{Name: "bare"}}}
	in := CRIStats{
		Sandboxes: []*runtimeapi.PodSandbox{
			sandbox("sb-dns", "kube-system", "dns", "uid-dns", true, tSb),
			sandbox("sb-idle", "default", "idle", "uid-idle", true, tSb), // no running container: not listed
		},
		Containers: []*runtimeapi.Container{
			container("c-dns", "sb-dns", "coredns", true),
			container("c-bare", "sb-dns", "bare", true),
			container("c-idle", "sb-idle", "idle", false),
		},
		ContainerStats: []*runtimeapi.ContainerStats{
			ctrStats("c-dns", "coredns", 3000, 2048, 700, ""),
			bare,
			ctrStats("c-idle", "idle", 1, 1, 1, ""),
		},
	}
	got := FromCRI(in, PodOptions{Now: tNow, PodLogsDir: logs})
	if len(got) != 1 || got[0].PodRef.Name != "dns" {
		t.Fatalf("FromCRI = %+v, want the dns pod only", got)
	}
	ps := got[0]
	// pod CPU and memory are the containers' sums; a container without figures counts zero
	if val(ps.CPU.UsageCoreNanoSeconds) != 3000 || val(ps.Memory.WorkingSetBytes) != 2048 || val(ps.Memory.UsageBytes) != 2058 {
		t.Errorf("pod sums: cpu %+v memory %+v", ps.CPU, ps.Memory)
	}
	if ps.Network != nil {
		t.Errorf("pod network without sandbox stats: %+v", ps.Network)
	}
	b, dns := ps.Containers[0], ps.Containers[1]
	if b.Name != "bare" || val(b.CPU.UsageCoreNanoSeconds) != 0 || val(b.Memory.WorkingSetBytes) != 0 || !b.CPU.Time.Time.Equal(tNow) {
		t.Errorf("container without CRI figures: %+v cpu %+v memory %+v", b.Name, b.CPU, b.Memory)
	}
	if dns.Logs == nil || val(dns.Logs.UsedBytes) < 10000 || val(dns.Logs.InodesUsed) != 2 || dns.Logs.CapacityBytes == nil {
		t.Fatalf("coredns log stats = %+v, want ≥10000 bytes, 2 inodes (dir and file), a capacity", dns.Logs)
	}
	wantUsed := 700 + *dns.Logs.UsedBytes
	if val(ps.EphemeralStorage.UsedBytes) != wantUsed || ps.EphemeralStorage.CapacityBytes == nil {
		t.Errorf("ephemeral used = %d, want layer + logs = %d; capacity %v", val(ps.EphemeralStorage.UsedBytes), wantUsed, ps.EphemeralStorage.CapacityBytes)
	}
}

func TestCurrentSandboxes(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []*runtimeapi.PodSandbox
		want []string
	}{
		{"one per pod", []*runtimeapi.PodSandbox{sandbox("a", "ns", "p", "u", false, tSb), sandbox("b", "ns", "q", "u2", true, tSb)}, []string{"a", "b"}},
		{"ready wins over newer", []*runtimeapi.PodSandbox{sandbox("old-ready", "ns", "p", "u", true, tSb), sandbox("new-dead", "ns", "p", "u", false, tNow)}, []string{"old-ready"}},
		{"newest of the not ready", []*runtimeapi.PodSandbox{sandbox("a", "ns", "p", "u", false, tSb), sandbox("b", "ns", "p", "u", false, tNow), sandbox("c", "ns", "p", "u", false, tCtr)}, []string{"b"}},
		{"same name, other namespace", []*runtimeapi.PodSandbox{sandbox("a", "ns1", "p", "u", false, tSb), sandbox("b", "ns2", "p", "u", false, tNow)}, []string{"a", "b"}},
		{"no metadata", []*runtimeapi.PodSandbox{{Id: "x"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, sb := range currentSandboxes(tc.in) {
				got = append(got, sb.Id)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
