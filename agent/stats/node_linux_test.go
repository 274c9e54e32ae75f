package stats

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cadvisorapi "github.com/google/cadvisor/lib/model"
	"golang.org/x/sys/unix"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// statfs is statfs(2) of path, for comparison with what cAdvisor reports.
func statfs(path string) (*fsInfo, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, err
	}
	bs := uint64(st.Frsize)
	return &fsInfo{
		capacity:   st.Blocks * bs,
		available:  st.Bavail * bs,
		used:       (st.Blocks - st.Bfree) * bs,
		inodes:     ptr(st.Files),
		inodesFree: ptr(st.Ffree),
	}, nil
}

// near reports whether a and b, read moments apart, are within tol of each other.
func near(a, b, tol uint64) bool { return max(a, b)-min(a, b) <= tol }

func TestMachine(t *testing.T) {
	src := &fakeSource{
		mi: &cadvisorapi.MachineInfo{
			NumCores: 4, MemoryCapacity: 8 * gib, MachineID: "mid", SystemUUID: "uuid", BootID: "bid",
			HugePages: []cadvisorapi.HugePagesInfo{{PageSize: 2048, NumPages: 10}, {PageSize: 1048576, NumPages: 0}},
		},
		vi: &cadvisorapi.VersionInfo{KernelVersion: "6.1.0", ContainerOsVersion: "Debian GNU/Linux 12 (bookworm)"},
	}
	dir := t.TempDir()
	mi, err := fakeNode(t, NodeOptions{FsPath: dir}, src).Machine()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d %d %s %s %s %s %s %v", 4, 8*gib, "mid", "uuid", "bid", "6.1.0", "Debian GNU/Linux 12 (bookworm)", map[uint64]uint64{2 << 20: 10, 1 << 30: 0})
	if got := fmt.Sprintf("%d %d %s %s %s %s %s %v", mi.NumCores, mi.MemoryCapacity, mi.MachineID, mi.SystemUUID, mi.BootID, mi.KernelVersion, mi.OSImage, mi.HugePages); got != want {
		t.Errorf("machine = %s, want %s", got, want)
	}
	sf, err := statfs(dir)
	if err != nil {
		testenv.Skip(t, "no statfs: "+err.Error())
	}
	if mi.FsCapacity != sf.capacity {
		t.Errorf("fs capacity %d, want statfs's %d", mi.FsCapacity, sf.capacity)
	}

	if _, err := fakeNode(t, NodeOptions{}, &fakeSource{}).Machine(); err == nil || !strings.Contains(err.Error(), "machine info") {
		t.Errorf("Machine without machine info: %v", err)
	}
}

// hostNode is a Node on this machine's cgroups, or a skip where cAdvisor
// cannot read them.
func hostNode(t *testing.T, o NodeOptions) *Node {
	t.Helper()
	if _, err := newHostSource(); err != nil {
		testenv.Skip(t, "no cgroups to read: "+err.Error())
	}
	return NewNode(o)
}

func cgroup2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// readRootWorkingSet reads the root memory cgroup's working set by hand: on
// v1 memory.usage_in_bytes − total_inactive_file; on v2, where the root has
// no memory.current, anon + file − inactive_file of memory.stat (what
// cAdvisor's cgroup library reports as the root's usage).
func readRootWorkingSet(t *testing.T) (usage, workingSet uint64) {
	t.Helper()
	dir, inactiveKey := "/sys/fs/cgroup/memory", "total_inactive_file"
	if cgroup2() {
		dir, inactiveKey = "/sys/fs/cgroup", "inactive_file"
	}
	data, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		testenv.Skip(t, "no root memory cgroup: "+err.Error())
	}
	stat := map[string]uint64{}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			stat[k], _ = strconv.ParseUint(v, 10, 64)
		}
	}
	if cgroup2() {
		usage = stat["anon"] + stat["file"]
	} else {
		data, err := os.ReadFile(filepath.Join(dir, "memory.usage_in_bytes"))
		if err != nil {
			t.Fatal(err)
		}
		usage, err = strconv.ParseUint(string(bytes.TrimSpace(data)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
	}
	return usage, usage - min(stat[inactiveKey], usage)
}

func memTotal(t *testing.T) uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}

// The node memory figures on this machine are consistent and are those of the
// root memory cgroup, as the eviction manager's memory.available needs them.
func TestNodeStatsHostMemory(t *testing.T) {
	n := hostNode(t, NodeOptions{FsPath: t.TempDir()})
	ns, err := n.Stats()
	if err != nil {
		t.Fatal(err)
	}
	mi, err := n.Machine()
	if err != nil {
		t.Fatal(err)
	}
	m := ns.Memory
	if m.WorkingSetBytes == nil || m.AvailableBytes == nil || m.UsageBytes == nil {
		t.Fatalf("memory = %+v, want usage, working set and available bytes", m)
	}
	ws, avail, usage := *m.WorkingSetBytes, *m.AvailableBytes, *m.UsageBytes
	t.Logf("capacity %d, usage %d, working set %d, available %d (cgroup v2: %v)", mi.MemoryCapacity, usage, ws, avail, cgroup2())
	if mi.MemoryCapacity != memTotal(t) {
		t.Errorf("memory capacity %d, want MemTotal %d", mi.MemoryCapacity, memTotal(t))
	}
	if ws == 0 || ws > mi.MemoryCapacity || ws > usage {
		t.Errorf("working set %d, want 0 < working set ≤ usage %d and ≤ capacity %d", ws, usage, mi.MemoryCapacity)
	}
	if avail+ws != mi.MemoryCapacity {
		t.Errorf("available %d + working set %d = %d, want the capacity %d", avail, ws, avail+ws, mi.MemoryCapacity)
	}
	wantUsage, wantWS := readRootWorkingSet(t)
	tol := max(uint64(64<<20), wantUsage/20) // the figures move between the two reads
	if !near(usage, wantUsage, tol) || !near(ws, wantWS, tol) {
		t.Errorf("usage %d, working set %d; the root cgroup has %d, %d", usage, ws, wantUsage, wantWS)
	}
	if ns.CPU.UsageCoreNanoSeconds == nil || *ns.CPU.UsageCoreNanoSeconds == 0 {
		t.Errorf("cpu = %+v, want the root cgroup's usage", ns.CPU)
	}
	if def := defaultRouteInterface("/proc/1/net/route"); def != "" && (ns.Network == nil || ns.Network.Name != def) {
		t.Errorf("network %+v, want pid 1's interfaces with %s (the default route's) as the default", ns.Network, def)
	}
	if ns.Rlimit.MaxPID == nil || ns.Rlimit.NumOfRunningProcesses == nil || ns.StartTime.IsZero() {
		t.Errorf("rlimit %+v, start time %v", ns.Rlimit, ns.StartTime)
	}
}

// The node's CPU rate comes from two samples of the root cgroup.
func TestNodeStatsHostCPURate(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Now())
	n := hostNode(t, NodeOptions{FsPath: t.TempDir(), Clock: fc})
	first, err := n.Stats()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for x := 0; time.Now().Before(deadline); x++ { // some CPU use of our own
		_ = fmt.Sprint(x)
	}
	fc.Step(2 * time.Second)
	second, err := n.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if second.CPU.UsageNanoCores == nil || *second.CPU.UsageNanoCores == 0 ||
		*second.CPU.UsageCoreNanoSeconds <= *first.CPU.UsageCoreNanoSeconds {
		t.Errorf("cpu %+v after %+v, want a rate over the 2 s of use", second.CPU, first.CPU)
	}
}

// The node's filesystem figures are statfs's of the directory's filesystem.
func TestNodeStatsHostFs(t *testing.T) {
	dir := t.TempDir()
	ns, err := hostNode(t, NodeOptions{FsPath: dir}).Stats()
	if err != nil {
		t.Fatal(err)
	}
	want, err := statfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkFs(t, dir, ns.Fs.CapacityBytes, ns.Fs.AvailableBytes, ns.Fs.UsedBytes, ns.Fs.Inodes, ns.Fs.InodesFree, want)
	if ns.Fs.InodesUsed == nil || *ns.Fs.InodesUsed != *ns.Fs.Inodes-*ns.Fs.InodesFree {
		t.Errorf("inodes used %v, want inodes − free", deref(ns.Fs.InodesUsed))
	}
}

func checkFs(t *testing.T, path string, capacity, available, used, inodes, inodesFree *uint64, want *fsInfo) {
	t.Helper()
	if capacity == nil || available == nil || used == nil {
		t.Fatalf("%s: capacity %v, available %v, used %v", path, deref(capacity), deref(available), deref(used))
	}
	tol := uint64(256 << 20) // other writers between the two reads
	if *capacity != want.capacity || !near(*available, want.available, tol) || !near(*used, want.used, tol) {
		t.Errorf("%s: capacity %d, available %d, used %d; statfs has %d, %d, %d", path, *capacity, *available, *used, want.capacity, want.available, want.used)
	}
	if want.capacity > 0 && (inodes == nil || inodesFree == nil || *inodes != *want.inodes || !near(*inodesFree, *want.inodesFree, 10000)) {
		t.Errorf("%s: inodes %v, free %v; statfs has %d, %d", path, deref(inodes), deref(inodesFree), *want.inodes, *want.inodesFree)
	}
}

// statFs gives statfs's figures for a partition cAdvisor knows (the temp dir,
// /, a tmpfs) and for one it has no plugin for (/proc: its own statfs).
func TestStatFsMatchesStatfs(t *testing.T) {
	for _, p := range []string{t.TempDir(), "/", "/dev/shm", "/proc", "/sys/fs/cgroup"} {
		want, err := statfs(p)
		if err != nil {
			continue
		}
		got, err := statFs(p)
		if err != nil {
			t.Errorf("statFs(%s): %v", p, err)
			continue
		}
		checkFs(t, p, &got.capacity, &got.available, &got.used, got.inodes, got.inodesFree, want)
	}
}

// Machine on this machine: cAdvisor's machine info and statfs's capacity.
func TestMachineHost(t *testing.T) {
	dir := t.TempDir()
	mi, err := hostNode(t, NodeOptions{FsPath: dir}).Machine()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", mi)
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if mi.NumCores < 1 || mi.MemoryCapacity != memTotal(t) || mi.KernelVersion != unix.ByteSliceToString(uts.Release[:]) ||
		mi.BootID != strings.TrimSpace(string(bootID)) || mi.OSImage == "" {
		t.Errorf("machine = %+v", mi)
	}
	want, err := statfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if mi.FsCapacity != want.capacity {
		t.Errorf("fs capacity %d, want statfs's %d", mi.FsCapacity, want.capacity)
	}
}

// Stats, Machine and FromCRI's statFs may run at once (the Summary handler,
// the eviction manager, node status).
func TestNodeHostConcurrent(t *testing.T) {
	n := hostNode(t, NodeOptions{FsPath: t.TempDir(), SystemContainers: map[string]string{"misc": "/"}})
	done := make(chan error)
	for i := range 6 {
		go func() {
			var err error
			switch i % 3 {
			case 0:
				_, err = n.Stats()
			case 1:
				_, err = n.Machine()
			default:
				_, err = statFs("/")
			}
			done <- err
		}()
	}
	for range 6 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
