package cgstats

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// ErrNotFound means the cgroup does not exist (any more).
var ErrNotFound = errors.New("cgroup not found")

// DefaultRoot is where cgroup file systems are mounted.
const DefaultRoot = "/sys/fs/cgroup"

// Reader reads the statistics of cgroups of one cgroup version.
type Reader interface {
	// Stat reads the statistics of the cgroup at path, a path below the root of
	// each hierarchy such as "/kubepods/pod1/abc" (see Path). It fails with an
	// error wrapping ErrNotFound when the cgroup does not exist.
	Stat(path string) (*Stats, error)
	// Version is 1 or 2.
	Version() int
}

// Options configures New.
type Options struct {
	// Root is the directory the cgroup file systems are mounted under (default
	// DefaultRoot): the v2 tree itself, or the parent of the v1 hierarchies
	// (Root/memory, Root/cpuacct...).
	Root string
	// Version forces cgroup version 1 or 2; 0 detects it from the file system
	// type of Root (a cgroup2 mount means v2; anything else, including the
	// hybrid layout with an empty unified mount, means v1).
	Version int
}

// Stats is the usage of one cgroup at one moment. Counters are cumulative since
// the cgroup was created; the rest are gauges.
type Stats struct {
	Timestamp time.Time
	CPU       CPU
	Memory    Memory
	Pids      Pids
	// CPUPressure, MemoryPressure and IOPressure are the cgroup v2 pressure
	// stall information; nil on cgroup v1 or when the kernel has no PSI.
	CPUPressure, MemoryPressure, IOPressure *Pressure
}

// CPU is CPU time in nanoseconds.
type CPU struct {
	UsageNanos  uint64 // all CPU time used
	UserNanos   uint64
	SystemNanos uint64
	// CFS bandwidth control: enforcement periods elapsed, periods in which the
	// cgroup was throttled and the total time it was throttled.
	Periods, ThrottledPeriods uint64
	ThrottledNanos            uint64
}

// Memory is memory use in bytes, and page fault counts.
type Memory struct {
	// Usage is all memory charged to the cgroup, page cache included.
	Usage uint64
	// WorkingSet is Usage minus the inactive file cache (the kubelet's and
	// cAdvisor's definition), floored at 0: what cannot be reclaimed easily.
	WorkingSet uint64
	// RSS is anonymous memory (v1: total_rss; v2: anon).
	RSS        uint64
	Cache      uint64 // page cache (v1: total_cache; v2: file)
	MappedFile uint64
	// ActiveFile and InactiveFile are the file cache LRU lists.
	ActiveFile, InactiveFile uint64
	// MaxUsage is the peak usage (v2: memory.peak, on kernels that have it).
	MaxUsage uint64
	// Swap is swap in use.
	Swap uint64
	// Limit is the memory limit; 0 means none.
	Limit uint64
	// PageFaults and MajorPageFaults count faults since creation.
	PageFaults, MajorPageFaults uint64
	// Failcnt counts how often usage hit the limit (v1 memory.failcnt; v2 the
	// "max" count of memory.events).
	Failcnt uint64
}

// Available is the kubelet's available bytes: Limit minus WorkingSet, floored at
// 0. ok is false when there is no limit.
func (m Memory) Available() (bytes uint64, ok bool) {
	if m.Limit == 0 {
		return 0, false
	}
	if m.WorkingSet >= m.Limit {
		return 0, true
	}
	return m.Limit - m.WorkingSet, true
}

// Pids counts tasks.
type Pids struct {
	Current uint64
	Limit   uint64 // 0 means none
}

// Pressure is pressure stall information of one resource.
type Pressure struct {
	Some, Full *PressureData // Full is nil for CPU on older kernels
}

// PressureData is one PSI line: the total stall time in nanoseconds and the
// running averages in percent over 10, 60 and 300 seconds.
type PressureData struct {
	TotalNanos           uint64
	Avg10, Avg60, Avg300 float64
}

// New returns the Reader for the cgroup version in use under o.Root.
func New(o Options) (Reader, error) {
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	if o.Version == 0 {
		v, err := detectVersion(o.Root)
		if err != nil {
			return nil, fmt.Errorf("cgstats: detect cgroup version of %s: %w", o.Root, err)
		}
		o.Version = v
	}
	switch o.Version {
	case 1:
		return newV1(o.Root)
	case 2:
		return newV2(o.Root)
	}
	return nil, fmt.Errorf("cgstats: cgroup version %d: want 1 or 2", o.Version)
}

// NanoCores is the CPU rate between two samples of one cgroup, in billionths of
// a core (1e9 = one core busy all the time). ok is false when no rate can be
// told: no earlier sample, time not moving forward, or a counter that went
// backwards (a new cgroup under the same name).
func NanoCores(prev, cur *Stats) (rate uint64, ok bool) {
	if prev == nil || cur == nil {
		return 0, false
	}
	dt := cur.Timestamp.Sub(prev.Timestamp)
	if dt <= 0 || cur.CPU.UsageNanos < prev.CPU.UsageNanos {
		return 0, false
	}
	used := float64(cur.CPU.UsageNanos - prev.CPU.UsageNanos)
	return uint64(used / float64(dt) * float64(time.Second)), true
}

// Path returns the path below the root of each hierarchy of the cgroup that
// cgroupsPath names: a runtime-spec linux.cgroupsPath in the cgroupfs notation
// ("/parent/id"), the systemd notation ("slice:prefix:name", a scope
// "prefix-name.scope" in that slice, or the slice name itself when name ends in
// ".slice"), or a bare systemd slice name ("a-b.slice", which lives at
// "/a.slice/a-b.slice").
func Path(cgroupsPath string) (string, error) {
	switch {
	case cgroupsPath == "":
		return "", errors.New("cgstats: empty cgroup path")
	case strings.HasPrefix(cgroupsPath, "/"):
		if strings.Contains(cgroupsPath, ":") {
			return "", fmt.Errorf("cgstats: cgroup path %q: a cgroupfs path has no ':'", cgroupsPath)
		}
		return path.Clean(cgroupsPath), nil
	case strings.Contains(cgroupsPath, ":"):
		parts := strings.Split(cgroupsPath, ":")
		if len(parts) != 3 {
			return "", fmt.Errorf("cgstats: systemd cgroup path %q: want slice:prefix:name", cgroupsPath)
		}
		slice, prefix, name := parts[0], parts[1], parts[2]
		if name == "" {
			return "", fmt.Errorf("cgstats: systemd cgroup path %q: empty name", cgroupsPath)
		}
		if strings.HasSuffix(name, ".slice") {
			// A slice's name spells its whole ancestry.
			return SlicePath(name)
		}
		if slice == "" {
			slice = "system.slice"
		}
		parent, err := SlicePath(slice)
		if err != nil {
			return "", err
		}
		unit := name + ".scope"
		if prefix != "" {
			unit = prefix + "-" + unit
		}
		return path.Join(parent, unit), nil
	case strings.HasSuffix(cgroupsPath, ".slice"):
		return SlicePath(cgroupsPath)
	}
	return "", fmt.Errorf("cgstats: cgroup path %q: want /parent/name, slice:prefix:name or a slice name", cgroupsPath)
}

// SlicePath returns where systemd puts a slice: each dash in its name nests it
// one level deeper ("a-b-c.slice" is "/a.slice/a-b.slice/a-b-c.slice"), and
// "-.slice" is the root.
func SlicePath(slice string) (string, error) {
	name, ok := strings.CutSuffix(slice, ".slice")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("cgstats: %q is not a systemd slice name", slice)
	}
	if name == "-" {
		return "/", nil
	}
	var b strings.Builder
	prefix := ""
	for part := range strings.SplitSeq(name, "-") {
		if part == "" {
			return "", fmt.Errorf("cgstats: %q is not a systemd slice name (empty component)", slice)
		}
		b.WriteString("/" + prefix + part + ".slice")
		prefix += part + "-"
	}
	return b.String(), nil
}
