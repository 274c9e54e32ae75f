package cgstats

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	"github.com/containerd/cgroups/v3/cgroup2"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"golang.org/x/sys/unix"
)

// unlimited is where the kernel's "no limit" values start (v1 reports a page
// rounded MaxInt64, v2 "max", which the library reads as MaxUint64).
const unlimited = uint64(1) << 62

func limit(v uint64) uint64 {
	if v >= unlimited {
		return 0
	}
	return v
}

func detectVersion(root string) (int, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return 0, err
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return 2, nil
	}
	return 1, nil
}

func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}

// v1 reads the controllers the CRI needs, each in its own hierarchy under root.
type v1 struct {
	root      string
	hierarchy cgroup1.Hierarchy
}

func newV1(root string) (Reader, error) {
	r := &v1{root: root}
	r.hierarchy = func() ([]cgroup1.Subsystem, error) {
		all := []cgroup1.Subsystem{
			cgroup1.NewCpu(root),
			cgroup1.NewCpuacct(root),
			// Kernel memory is not reported; swap only where it is accounted.
			cgroup1.NewMemory(root, cgroup1.OptionalSwap(), cgroup1.IgnoreModules("kmem", "kmem.tcp")),
			cgroup1.NewPids(root),
		}
		var present []cgroup1.Subsystem
		for _, s := range all {
			if _, err := os.Lstat(filepath.Join(root, string(s.Name()))); err == nil {
				present = append(present, s)
			}
		}
		if len(present) == 0 {
			return nil, fmt.Errorf("no cpu, cpuacct, memory or pids hierarchy under %s", root)
		}
		return present, nil
	}
	if _, err := r.hierarchy(); err != nil {
		return nil, fmt.Errorf("cgstats: %w", err)
	}
	return r, nil
}

func (*v1) Version() int { return 1 }

func (r *v1) Stat(path string) (*Stats, error) {
	cg, err := cgroup1.Load(cgroup1.StaticPath(path), cgroup1.WithHierarchy(r.hierarchy))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, fmt.Errorf("cgstats: cgroup %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("cgstats: load cgroup %s: %w", path, err)
	}
	now := time.Now()
	m, err := cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return nil, fmt.Errorf("cgstats: read cgroup %s: %w", path, err)
	}
	// A cgroup removed while it was read yields zeros rather than an error.
	if !r.exists(path) {
		return nil, fmt.Errorf("cgstats: cgroup %s: %w", path, ErrNotFound)
	}
	return fromV1(m, now), nil
}

func (r *v1) exists(path string) bool {
	for _, c := range []string{"cpuacct", "memory", "cpu", "pids"} {
		if _, err := os.Lstat(filepath.Join(r.root, c, path)); err == nil {
			return true
		}
	}
	return false
}

func fromV1(m *v1stats.Metrics, at time.Time) *Stats {
	s := &Stats{Timestamp: at}
	if c := m.GetCPU(); c != nil {
		s.CPU = CPU{
			UsageNanos:       c.GetUsage().GetTotal(),
			UserNanos:        c.GetUsage().GetUser(),
			SystemNanos:      c.GetUsage().GetKernel(),
			Periods:          c.GetThrottling().GetPeriods(),
			ThrottledPeriods: c.GetThrottling().GetThrottledPeriods(),
			ThrottledNanos:   c.GetThrottling().GetThrottledTime(),
		}
	}
	if mem := m.GetMemory(); mem != nil {
		usage := mem.GetUsage().GetUsage()
		s.Memory = Memory{
			Usage:           usage,
			WorkingSet:      workingSet(usage, mem.GetTotalInactiveFile()),
			RSS:             mem.GetTotalRSS(),
			Cache:           mem.GetTotalCache(),
			MappedFile:      mem.GetTotalMappedFile(),
			ActiveFile:      mem.GetTotalActiveFile(),
			InactiveFile:    mem.GetTotalInactiveFile(),
			MaxUsage:        mem.GetUsage().GetMax(),
			Limit:           limit(mem.GetUsage().GetLimit()),
			PageFaults:      mem.GetTotalPgFault(),
			MajorPageFaults: mem.GetTotalPgMajFault(),
			Failcnt:         mem.GetUsage().GetFailcnt(),
		}
		// memsw counts memory plus swap.
		if sw := mem.GetSwap().GetUsage(); sw > usage {
			s.Memory.Swap = sw - usage
		}
	}
	if p := m.GetPids(); p != nil {
		s.Pids = Pids{Current: p.GetCurrent(), Limit: limit(p.GetLimit())}
	}
	return s
}

// v2 reads the unified hierarchy at root.
type v2 struct{ root string }

func newV2(root string) (Reader, error) {
	if _, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("cgstats: %w", err)
	}
	return &v2{root: root}, nil
}

func (*v2) Version() int { return 2 }

const v2Mask = cgroup2.StatCPU | cgroup2.StatMemory | cgroup2.StatMemoryEvents | cgroup2.StatPids | cgroup2.StatIO

func (r *v2) Stat(path string) (*Stats, error) {
	dir := filepath.Join(r.root, path)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cgstats: cgroup %s: %w", path, ErrNotFound)
	}
	m, err := cgroup2.Load(path, cgroup2.WithMountpoint(r.root))
	if err != nil {
		return nil, fmt.Errorf("cgstats: load cgroup %s: %w", path, err)
	}
	now := time.Now()
	st, err := m.StatFiltered(v2Mask)
	if err != nil {
		return nil, fmt.Errorf("cgstats: read cgroup %s: %w", path, err)
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cgstats: cgroup %s: %w", path, ErrNotFound)
	}
	return fromV2(st, now), nil
}

func fromV2(m *v2stats.Metrics, at time.Time) *Stats {
	s := &Stats{Timestamp: at}
	if c := m.GetCPU(); c != nil {
		s.CPU = CPU{
			UsageNanos:       c.GetUsageUsec() * 1000,
			UserNanos:        c.GetUserUsec() * 1000,
			SystemNanos:      c.GetSystemUsec() * 1000,
			Periods:          c.GetNrPeriods(),
			ThrottledPeriods: c.GetNrThrottled(),
			ThrottledNanos:   c.GetThrottledUsec() * 1000,
		}
		s.CPUPressure = pressure(c.GetPSI())
	}
	if mem := m.GetMemory(); mem != nil {
		s.Memory = Memory{
			Usage:           mem.GetUsage(),
			WorkingSet:      workingSet(mem.GetUsage(), mem.GetInactiveFile()),
			RSS:             mem.GetAnon(),
			Cache:           mem.GetFile(),
			MappedFile:      mem.GetFileMapped(),
			ActiveFile:      mem.GetActiveFile(),
			InactiveFile:    mem.GetInactiveFile(),
			MaxUsage:        mem.GetMaxUsage(),
			Swap:            mem.GetSwapUsage(),
			Limit:           limit(mem.GetUsageLimit()),
			PageFaults:      mem.GetPgfault(),
			MajorPageFaults: mem.GetPgmajfault(),
		}
		s.MemoryPressure = pressure(mem.GetPSI())
	}
	if ev := m.GetMemoryEvents(); ev != nil {
		s.Memory.Failcnt = ev.GetMax()
	}
	if p := m.GetPids(); p != nil {
		s.Pids = Pids{Current: p.GetCurrent(), Limit: limit(p.GetLimit())}
	}
	if io := m.GetIo(); io != nil {
		s.IOPressure = pressure(io.GetPSI())
	}
	return s
}

func pressure(p *v2stats.PSIStats) *Pressure {
	if p == nil || (p.GetSome() == nil && p.GetFull() == nil) {
		return nil
	}
	return &Pressure{Some: pressureData(p.GetSome()), Full: pressureData(p.GetFull())}
}

func pressureData(d *v2stats.PSIData) *PressureData {
	if d == nil {
		return nil
	}
	total := d.GetTotal()
	if total > math.MaxUint64/1000 {
		total = math.MaxUint64 / 1000
	}
	return &PressureData{TotalNanos: total * 1000, Avg10: d.GetAvg10(), Avg60: d.GetAvg60(), Avg300: d.GetAvg300()}
}
