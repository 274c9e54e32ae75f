package stats

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"
)

// userHZ is the unit of /proc/stat times: USER_HZ, 100 on every Linux ABI.
const userHZ = 100

// minRateWindow is the shortest interval usageNanoCores is computed over;
// calls closer together get the rate of the last full window.
const minRateWindow = time.Second

// NodeOptions configures a Node.
type NodeOptions struct {
	NodeName string
	ProcRoot string // "" means /proc
	FsPath   string // a directory on the filesystem reported as the node's Fs (the agent's root dir); "" means /
	Clock    clock.PassiveClock
}

// Node reads the node's Summary figures. It keeps the previous CPU sample to
// report usageNanoCores; it is safe for concurrent use.
type Node struct {
	o NodeOptions

	mu       sync.Mutex
	base     *cpuSample // the sample the current rate window started with
	lastRate *uint64
}

type cpuSample struct {
	at    time.Time
	usage uint64 // core-nanoseconds
}

// NewNode returns a Node reading o.ProcRoot.
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
	return &Node{o: o}
}

// Stats returns the node's CPU, memory, swap, filesystem, network and process
// figures. /proc/stat, /proc/meminfo and the filesystem are required; network,
// page faults and process limits are left out when their files are missing.
func (n *Node) Stats() (*statsapi.NodeStats, error) {
	now := n.o.Clock.Now()
	ts := metav1.NewTime(now)
	ns := &statsapi.NodeStats{NodeName: n.o.NodeName}

	st, err := readProcStat(filepath.Join(n.o.ProcRoot, "stat"))
	if err != nil {
		return nil, err
	}
	ns.StartTime = metav1.NewTime(time.Unix(st.bootTime, 0))
	ns.CPU = &statsapi.CPUStats{Time: ts, UsageCoreNanoSeconds: ptr(st.usage), UsageNanoCores: n.rate(now, st.usage)}

	mi, err := readKeyValues(filepath.Join(n.o.ProcRoot, "meminfo"), 1024)
	if err != nil {
		return nil, err
	}
	ns.Memory, ns.Swap = memoryStats(mi, ts)
	if vm, err := readKeyValues(filepath.Join(n.o.ProcRoot, "vmstat"), 1); err == nil {
		ns.Memory.PageFaults = lookup(vm, "pgfault")
		ns.Memory.MajorPageFaults = lookup(vm, "pgmajfault")
	}

	fs, err := statFs(n.o.FsPath)
	if err != nil {
		return nil, fmt.Errorf("node filesystem %s: %w", n.o.FsPath, err)
	}
	ns.Fs = fs.stats(ts)

	if net, err := networkStats(n.o.ProcRoot, ts); err == nil {
		ns.Network = net
	}
	ns.Rlimit = rlimitStats(n.o.ProcRoot, ts)
	return ns, nil
}

// rate returns the CPU use in nanocores over the last window of at least
// minRateWindow, nil until there is one.
func (n *Node) rate(now time.Time, usage uint64) *uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	cur := &cpuSample{at: now, usage: usage}
	if n.base == nil || usage < n.base.usage {
		n.base, n.lastRate = cur, nil
		return nil
	}
	if d := now.Sub(n.base.at); d >= minRateWindow {
		r := uint64(float64(usage-n.base.usage) / d.Seconds())
		n.base, n.lastRate = cur, &r
	}
	if n.lastRate == nil {
		return nil
	}
	return ptr(*n.lastRate)
}

type procStat struct {
	usage    uint64 // busy time of all CPUs, core-nanoseconds
	bootTime int64
}

// readProcStat reads the aggregate "cpu" line and btime. Busy time is user,
// nice, system, irq and softirq (guest time is inside user); idle, iowait and
// steal are not use.
func readProcStat(path string) (procStat, error) {
	var st procStat
	data, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("node CPU: %w", err)
	}
	foundCPU := false
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "cpu":
			if len(f) < 8 {
				return st, fmt.Errorf("node CPU: %s: short cpu line %q", path, line)
			}
			var ticks uint64
			for _, i := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					return st, fmt.Errorf("node CPU: %s: field %d of the cpu line: %w", path, i, err)
				}
				ticks += v
			}
			st.usage = ticks * (uint64(time.Second) / userHZ)
			foundCPU = true
		case "btime":
			if len(f) == 2 {
				st.bootTime, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	if !foundCPU {
		return st, fmt.Errorf("node CPU: %s: no cpu line", path)
	}
	return st, nil
}

// readKeyValues reads "Key: value [kB]" (meminfo) or "key value" (vmstat)
// lines, multiplying values by unit.
func readKeyValues(path string, unit uint64) (map[string]uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node memory: %w", err)
	}
	m := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		m[strings.TrimSuffix(f[0], ":")] = v * unit
	}
	return m, nil
}

func lookup(m map[string]uint64, key string) *uint64 {
	if v, ok := m[key]; ok {
		return ptr(v)
	}
	return nil
}

// memoryStats derives the figures cAdvisor reports for the root cgroup: usage
// is what is not free, the working set is usage less inactive file pages, and
// available is capacity less the working set (the kubelet's memory.available).
func memoryStats(mi map[string]uint64, ts metav1.Time) (*statsapi.MemoryStats, *statsapi.SwapStats) {
	total, free := mi["MemTotal"], mi["MemFree"]
	usage := total - min(free, total)
	ws := usage - min(mi["Inactive(file)"], usage)
	mem := &statsapi.MemoryStats{
		Time:            ts,
		UsageBytes:      ptr(usage),
		WorkingSetBytes: ptr(ws),
		AvailableBytes:  ptr(total - ws),
		RSSBytes:        lookup(mi, "AnonPages"),
	}
	swapTotal, swapFree := mi["SwapTotal"], mi["SwapFree"]
	swap := &statsapi.SwapStats{
		Time:               ts,
		SwapUsageBytes:     ptr(swapTotal - min(swapFree, swapTotal)),
		SwapAvailableBytes: ptr(swapFree),
	}
	return mem, swap
}

// ignoredInterface leaves out what cAdvisor leaves out of the node's network.
func ignoredInterface(name string) bool {
	for _, p := range []string{"lo", "veth", "docker", "nerdctl"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// networkStats reads /proc/net/dev; the default interface is the one of the
// default route (/proc/net/route), else eth0.
func networkStats(procRoot string, ts metav1.Time) (*statsapi.NetworkStats, error) {
	data, err := os.ReadFile(filepath.Join(procRoot, "net", "dev"))
	if err != nil {
		return nil, fmt.Errorf("node network: %w", err)
	}
	def := defaultRouteInterface(filepath.Join(procRoot, "net", "route"))
	if def == "" {
		def = "eth0"
	}
	ns := &statsapi.NetworkStats{Time: ts}
	for line := range strings.SplitSeq(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.Contains(name, "|") || ignoredInterface(name) {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue
		}
		num := func(i int) *uint64 {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil
			}
			return &v
		}
		is := statsapi.InterfaceStats{Name: name, RxBytes: num(0), RxErrors: num(2), TxBytes: num(8), TxErrors: num(10)}
		if name == def {
			ns.InterfaceStats = is
		}
		ns.Interfaces = append(ns.Interfaces, is)
	}
	return ns, nil
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

func ptr[T any](v T) *T { return &v }

// fsInfo is statfs of a filesystem.
type fsInfo struct {
	capacity, available, used uint64
	inodes, inodesFree        uint64
}

func (f *fsInfo) stats(ts metav1.Time) *statsapi.FsStats {
	return &statsapi.FsStats{
		Time:           ts,
		CapacityBytes:  ptr(f.capacity),
		AvailableBytes: ptr(f.available),
		UsedBytes:      ptr(f.used),
		Inodes:         ptr(f.inodes),
		InodesFree:     ptr(f.inodesFree),
		InodesUsed:     ptr(f.inodes - min(f.inodesFree, f.inodes)),
	}
}
