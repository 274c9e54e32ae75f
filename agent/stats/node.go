package stats

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cadvisorapi "github.com/google/cadvisor/lib/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"
)

// minRateWindow is the shortest interval usageNanoCores is computed over;
// calls closer together get the rate of the last full window.
const minRateWindow = time.Second

// maxMemorySize is the kubelet's bound above which a cgroup memory limit means
// "unlimited" (no availableBytes is reported).
const maxMemorySize = uint64(1 << 62)

// defaultInterface is the interface the kubelet reports as the node's network
// when there is no default route.
const defaultInterface = "eth0"

// NodeOptions configures a Node.
type NodeOptions struct {
	NodeName string
	// ProcRoot is where the figures cAdvisor does not read come from: the
	// boot time (stat), the default route's interface (1/net/route) and the
	// process limits (sys/kernel/pid_max, sys/kernel/threads-max, loadavg).
	// "" means /proc. cAdvisor reads the host's /proc, /sys and cgroup
	// filesystem where they are mounted.
	ProcRoot string
	// FsPath is a directory on the filesystem reported as the node's Fs (the
	// agent's root dir: nodefs); "" means /.
	FsPath string
	Clock  clock.PassiveClock
	// SystemContainers maps the Summary's system container names
	// (statsapi.SystemContainerPods "pods", SystemContainerKubelet,
	// SystemContainerRuntime, SystemContainerMisc) to their cgroups, as paths
	// under the cgroup hierarchy root ("/kubepods", "/kubepods.slice"). Their
	// CPU, memory and swap are read as the root's; the "pods" one's
	// availableBytes (its memory limit less its working set) is what the
	// eviction manager's allocatableMemory.available is. A cgroup that does
	// not exist is left out.
	SystemContainers map[string]string
}

// Node reads the node's Summary figures through cAdvisor (the root cgroup,
// the machine and the filesystems) and keeps the previous CPU samples to
// report usageNanoCores; it is safe for concurrent use.
type Node struct {
	o NodeOptions

	mu    sync.Mutex
	src   nodeSource // created on first use
	rates map[string]*rateWindow
}

// nodeSource is where the cAdvisor figures come from: on Linux the host's
// cgroups and machine through cAdvisor's packages; tests use a fake.
type nodeSource interface {
	// cgroup returns the spec and stats of a cgroup ("/" is the root: the
	// whole machine, with the machine's memory and swap as its limits and
	// pid 1's network), as cAdvisor's raw container handler reports them;
	// errNoCgroup when it does not exist.
	cgroup(name string) (cadvisorapi.ContainerSpec, *cadvisorapi.ContainerStats, error)
	// machine returns cAdvisor's machine and version info (read once).
	machine() (*cadvisorapi.MachineInfo, *cadvisorapi.VersionInfo, error)
}

var errNoCgroup = errors.New("no such cgroup")

// rateWindow is the CPU sample a rate window started with and the last rate.
type rateWindow struct {
	at    time.Time
	usage uint64 // core-nanoseconds
	last  *uint64
}

// NewNode returns a Node for o; nothing is read until Stats or Machine.
func NewNode(o NodeOptions) *Node {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.FsPath == "" {
		o.FsPath = "/"
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return &Node{o: o, rates: map[string]*rateWindow{}}
}

func (n *Node) source() (nodeSource, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.src == nil {
		s, err := newHostSource()
		if err != nil {
			return nil, err
		}
		n.src = s
	}
	return n.src, nil
}

// Stats returns the node's figures as the kubelet's Summary has them: CPU,
// memory, swap and IO pressure of the root cgroup, pid 1's network, the
// filesystem of FsPath (nodefs), process limits and the configured system
// containers. The root cgroup and the filesystem are required; the rest is
// left out when it cannot be read.
func (n *Node) Stats() (*statsapi.NodeStats, error) {
	src, err := n.source()
	if err != nil {
		return nil, fmt.Errorf("node stats: %w", err)
	}
	now := n.o.Clock.Now()
	ts := metav1.NewTime(now)

	spec, st, err := src.cgroup("/")
	if err != nil {
		return nil, fmt.Errorf("node CPU and memory (root cgroup): %w", err)
	}
	ns := &statsapi.NodeStats{NodeName: n.o.NodeName}
	if boot, ok := readBootTime(filepath.Join(n.o.ProcRoot, "stat")); ok {
		ns.StartTime = metav1.NewTime(boot)
	}
	ns.CPU = n.cpuStats("/", spec, st, now)
	ns.Memory = memoryStats(spec, st, ts)
	ns.Swap = swapStats(spec, st, ts)
	ns.IO = ioStats(st, ts)
	def := defaultRouteInterface(filepath.Join(n.o.ProcRoot, "1", "net", "route"))
	if def == "" {
		def = defaultInterface
	}
	ns.Network = networkStats(st, def, ts)

	fs, err := statFs(n.o.FsPath)
	if err != nil {
		return nil, fmt.Errorf("node filesystem %s: %w", n.o.FsPath, err)
	}
	ns.Fs = fs.stats(ts)
	ns.Rlimit = rlimitStats(n.o.ProcRoot, ts)
	ns.SystemContainers = n.systemContainers(src, now)
	return ns, nil
}

// systemContainers reads the configured system containers, sorted by name.
func (n *Node) systemContainers(src nodeSource, now time.Time) []statsapi.ContainerStats {
	names := make([]string, 0, len(n.o.SystemContainers))
	for name, cg := range n.o.SystemContainers {
		if cg != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	ts := metav1.NewTime(now)
	var out []statsapi.ContainerStats
	for _, name := range names {
		cg := n.o.SystemContainers[name]
		spec, st, err := src.cgroup(cg)
		if err != nil {
			continue // as the kubelet: a system container that cannot be read is left out
		}
		cs := statsapi.ContainerStats{
			Name:   name,
			CPU:    n.cpuStats(cg, spec, st, now),
			Memory: memoryStats(spec, st, ts),
			Swap:   swapStats(spec, st, ts),
			IO:     ioStats(st, ts),
		}
		if !spec.CreationTime.IsZero() {
			cs.StartTime = metav1.NewTime(spec.CreationTime)
		}
		out = append(out, cs)
	}
	return out
}

// cpuStats is the kubelet's CPU figures of a cgroup: its cumulative usage and
// the rate over the last window of at least minRateWindow.
func (n *Node) cpuStats(key string, spec cadvisorapi.ContainerSpec, st *cadvisorapi.ContainerStats, now time.Time) *statsapi.CPUStats {
	cs := &statsapi.CPUStats{Time: metav1.NewTime(now)}
	if !spec.HasCpu || st.Cpu == nil {
		return cs
	}
	cs.UsageCoreNanoSeconds = ptr(st.Cpu.Usage.Total)
	cs.UsageNanoCores = n.rate(key, now, st.Cpu.Usage.Total)
	cs.PSI = cadvisorPSI(st.Cpu.PSI)
	return cs
}

// rate returns the CPU use of key in nanocores over the last window of at
// least minRateWindow, nil until there is one.
func (n *Node) rate(key string, now time.Time, usage uint64) *uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.rates[key]
	if w == nil || usage < w.usage || now.Before(w.at) {
		n.rates[key] = &rateWindow{at: now, usage: usage}
		return nil
	}
	if d := now.Sub(w.at); d >= minRateWindow {
		r := uint64(float64(usage-w.usage) / d.Seconds())
		n.rates[key] = &rateWindow{at: now, usage: usage, last: &r}
		w = n.rates[key]
	}
	if w.last == nil {
		return nil
	}
	return ptr(*w.last)
}

// memoryStats is the kubelet's memory figures of a cgroup: usage, working set
// (usage less inactive file pages, as cAdvisor computes it), RSS, page faults
// and, when the cgroup has a limit (the root's is the machine's memory),
// available = limit − working set.
func memoryStats(spec cadvisorapi.ContainerSpec, st *cadvisorapi.ContainerStats, ts metav1.Time) *statsapi.MemoryStats {
	if !spec.HasMemory || st.Memory == nil {
		return &statsapi.MemoryStats{Time: ts, WorkingSetBytes: ptr(uint64(0))}
	}
	m := st.Memory
	ms := &statsapi.MemoryStats{
		Time:            ts,
		UsageBytes:      ptr(m.Usage),
		WorkingSetBytes: ptr(m.WorkingSet),
		RSSBytes:        ptr(m.RSS),
		PageFaults:      ptr(m.ContainerData.Pgfault),
		MajorPageFaults: ptr(m.ContainerData.Pgmajfault),
		PSI:             cadvisorPSI(m.PSI),
	}
	if limit := spec.Memory.Limit; limit <= maxMemorySize {
		ms.AvailableBytes = ptr(limit - min(m.WorkingSet, limit))
	}
	return ms
}

// swapStats is the kubelet's swap figures: usage and, with a swap limit (the
// root's is the machine's swap), what is left of it.
func swapStats(spec cadvisorapi.ContainerSpec, st *cadvisorapi.ContainerStats, ts metav1.Time) *statsapi.SwapStats {
	if !spec.HasMemory || st.Memory == nil {
		return nil
	}
	s := &statsapi.SwapStats{Time: ts, SwapUsageBytes: ptr(st.Memory.Swap)}
	if limit := spec.Memory.SwapLimit; limit <= maxMemorySize {
		s.SwapAvailableBytes = ptr(limit - min(st.Memory.Swap, limit))
	}
	return s
}

// ioStats carries the IO pressure; nil without PSI (cgroup v1).
func ioStats(st *cadvisorapi.ContainerStats, ts metav1.Time) *statsapi.IOStats {
	if st.DiskIo == nil {
		return nil
	}
	p := cadvisorPSI(st.DiskIo.PSI)
	if p == nil {
		return nil
	}
	return &statsapi.IOStats{Time: ts, PSI: p}
}

// cadvisorPSI converts pressure stall information; nil when there is none
// (cgroup v1, or a kernel without PSI).
func cadvisorPSI(p cadvisorapi.PSIStats) *statsapi.PSIStats {
	if p == (cadvisorapi.PSIStats{}) {
		return nil
	}
	data := func(d cadvisorapi.PSIData) statsapi.PSIData {
		return statsapi.PSIData{Total: d.Total, Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300}
	}
	return &statsapi.PSIStats{Full: data(p.Full), Some: data(p.Some)}
}

// networkStats is the kubelet's node network: every interface cAdvisor lists
// for pid 1 (it leaves out lo, veth*, docker* and nerdctl*), def as the
// default; nil when there is none.
func networkStats(st *cadvisorapi.ContainerStats, def string, ts metav1.Time) *statsapi.NetworkStats {
	if st.Network == nil || len(st.Network.Interfaces) == 0 {
		return nil
	}
	ns := &statsapi.NetworkStats{Time: ts}
	for _, i := range st.Network.Interfaces {
		is := statsapi.InterfaceStats{Name: i.Name, RxBytes: ptr(i.RxBytes), RxErrors: ptr(i.RxErrors), TxBytes: ptr(i.TxBytes), TxErrors: ptr(i.TxErrors)}
		if i.Name == def {
			ns.InterfaceStats = is
		}
		ns.Interfaces = append(ns.Interfaces, is)
	}
	return ns
}

// readBootTime reads btime from /proc/stat.
func readBootTime(path string) (time.Time, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(s, 0), true
			}
		}
	}
	return time.Time{}, false
}

// defaultRouteInterface returns the interface of the IPv4 default route, or "".
func defaultRouteInterface(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if len(f) >= 8 && f[1] == "00000000" && f[7] == "00000000" {
			return f[0]
		}
	}
	return ""
}

// rlimitStats is the kubelet's pidlimit.Stats: the task limit is the lower of
// kernel.pid_max and kernel.threads-max, the count is the total of
// /proc/loadavg's running/total field.
func rlimitStats(procRoot string, ts metav1.Time) *statsapi.RlimitStats {
	rl := &statsapi.RlimitStats{Time: ts}
	limit := int64(-1)
	for _, f := range []string{"pid_max", "threads-max"} {
		data, err := os.ReadFile(filepath.Join(procRoot, "sys", "kernel", f))
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err == nil && (limit < 0 || v < limit) {
			limit = v
		}
	}
	if limit >= 0 {
		rl.MaxPID = &limit
	}
	if data, err := os.ReadFile(filepath.Join(procRoot, "loadavg")); err == nil {
		// "0.00 0.01 0.05 1/171 2345"
		if f := strings.Fields(string(data)); len(f) >= 4 {
			if _, total, ok := strings.Cut(f[3], "/"); ok {
				if v, err := strconv.ParseInt(total, 10, 64); err == nil {
					rl.NumOfRunningProcesses = &v
				}
			}
		}
	}
	return rl
}

// MachineInfo is what the node reports about the machine: its capacity and
// the system info of the Node object's status, as the kubelet takes them from
// cAdvisor.
type MachineInfo struct {
	NumCores       int    // logical CPUs: capacity cpu
	MemoryCapacity uint64 // bytes (MemTotal): capacity memory
	// HugePages is the pages reserved per page size in bytes: capacity
	// hugepages-<size> is size × pages.
	HugePages     map[uint64]uint64
	MachineID     string
	SystemUUID    string
	BootID        string
	KernelVersion string
	OSImage       string // /etc/os-release PRETTY_NAME
	// FsCapacity is the size in bytes of the filesystem holding FsPath:
	// capacity ephemeral-storage. It is read on every call; the rest is read
	// once.
	FsCapacity uint64
}

// Machine returns the machine's capacity and identity.
func (n *Node) Machine() (*MachineInfo, error) {
	src, err := n.source()
	if err != nil {
		return nil, fmt.Errorf("machine info: %w", err)
	}
	mi, vi, err := src.machine()
	if err != nil {
		return nil, fmt.Errorf("machine info: %w", err)
	}
	fs, err := statFs(n.o.FsPath)
	if err != nil {
		return nil, fmt.Errorf("node filesystem %s: %w", n.o.FsPath, err)
	}
	out := &MachineInfo{
		NumCores:       mi.NumCores,
		MemoryCapacity: mi.MemoryCapacity,
		MachineID:      mi.MachineID,
		SystemUUID:     mi.SystemUUID,
		BootID:         mi.BootID,
		KernelVersion:  vi.KernelVersion,
		OSImage:        vi.ContainerOsVersion,
		FsCapacity:     fs.capacity,
	}
	for _, hp := range mi.HugePages {
		if out.HugePages == nil {
			out.HugePages = map[uint64]uint64{}
		}
		out.HugePages[hp.PageSize*1024] = hp.NumPages // cAdvisor's page size is in KiB
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// fsInfo is the size and inodes of a filesystem.
type fsInfo struct {
	capacity, available, used uint64
	inodes, inodesFree        *uint64 // nil when the filesystem does not count inodes
}

// fill sets the capacity, available bytes and inodes of fs.
func (f *fsInfo) fill(fs *statsapi.FsStats) {
	fs.CapacityBytes = ptr(f.capacity)
	fs.AvailableBytes = ptr(f.available)
	if f.inodes != nil && f.inodesFree != nil {
		fs.Inodes = ptr(*f.inodes)
		fs.InodesFree = ptr(*f.inodesFree)
	}
}

// stats is the kubelet's RootFsStats: used is capacity − free, inodesUsed
// inodes − free inodes.
func (f *fsInfo) stats(ts metav1.Time) *statsapi.FsStats {
	fs := &statsapi.FsStats{Time: ts, UsedBytes: ptr(f.used)}
	f.fill(fs)
	if fs.Inodes != nil {
		fs.InodesUsed = ptr(*fs.Inodes - min(*fs.InodesFree, *fs.Inodes))
	}
	return fs
}
