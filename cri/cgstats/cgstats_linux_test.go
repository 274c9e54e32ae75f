package cgstats

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// writeTree creates dir and writes files (name → content) in it.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// v2Files is a cgroup v2 directory as the kernel shows it, with the values
// the table below varies.
func v2Files(current, max, inactiveFile string) map[string]string {
	return map[string]string{
		"memory.current": current + "\n",
		"memory.max":     max + "\n",
		"memory.peak":    "30000000\n",
		"memory.stat": "anon 12000000\nfile 9000000\nkernel_stack 16384\nshmem 0\n" +
			"file_mapped 1000000\nactive_anon 11000000\ninactive_anon 1000000\n" +
			"active_file 4000000\ninactive_file " + inactiveFile + "\n" +
			"pgfault 4242\npgmajfault 7\n",
		"memory.swap.current": "4096\n",
		"memory.events":       "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n",
		"memory.pressure":     "some avg10=1.50 avg60=0.25 avg300=0.00 total=1200\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=300\n",
		"cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n" +
			"nr_periods 40\nnr_throttled 3\nthrottled_usec 125000\n",
		"cpu.pressure": "some avg10=0.10 avg60=0.00 avg300=0.00 total=77\n",
		"io.stat":      "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
		"pids.current": "3\n",
		"pids.max":     "max\n",
	}
}

func TestV2OnFakeTree(t *testing.T) {
	for _, c := range []struct {
		name                   string
		current, max, inactive string
		wantWorkingSet         uint64
		wantLimit              uint64
		wantAvailable          uint64
		wantLimited            bool
	}{
		{"limited", "20000000", "50000000", "5000000", 15000000, 50000000, 35000000, true},
		{"no limit", "20000000", "max", "5000000", 15000000, 0, 0, false},
		{"inactive file above usage", "20000000", "max", "25000000", 0, 0, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, filepath.Join(root, "kubepods/pod1/c1"), v2Files(c.current, c.max, c.inactive))
			r, err := New(Options{Root: root, Version: 2})
			if err != nil {
				t.Fatal(err)
			}
			if r.Version() != 2 {
				t.Fatalf("Version() = %d", r.Version())
			}
			s, err := r.Stat("/kubepods/pod1/c1")
			if err != nil {
				t.Fatal(err)
			}
			wantCPU := CPU{UsageNanos: 2500000000, UserNanos: 2000000000, SystemNanos: 500000000, Periods: 40, ThrottledPeriods: 3, ThrottledNanos: 125000000}
			if s.CPU != wantCPU {
				t.Errorf("CPU = %+v, want %+v", s.CPU, wantCPU)
			}
			m := s.Memory
			if m.Usage != 20000000 || m.WorkingSet != c.wantWorkingSet || m.Limit != c.wantLimit ||
				m.RSS != 12000000 || m.Cache != 9000000 || m.MappedFile != 1000000 ||
				m.PageFaults != 4242 || m.MajorPageFaults != 7 || m.MaxUsage != 30000000 ||
				m.Swap != 4096 || m.Failcnt != 5 || m.ActiveFile != 4000000 {
				t.Errorf("Memory = %+v", m)
			}
			if avail, ok := m.Available(); avail != c.wantAvailable || ok != c.wantLimited {
				t.Errorf("Available() = %d, %v; want %d, %v", avail, ok, c.wantAvailable, c.wantLimited)
			}
			if s.Pids != (Pids{Current: 3}) {
				t.Errorf("Pids = %+v", s.Pids)
			}
			if p := s.MemoryPressure; p == nil || p.Some == nil || p.Some.TotalNanos != 1200000 || p.Some.Avg10 != 1.5 || p.Full == nil || p.Full.TotalNanos != 300000 {
				t.Errorf("MemoryPressure = %+v", p)
			}
			if p := s.CPUPressure; p == nil || p.Some == nil || p.Some.TotalNanos != 77000 || p.Full != nil {
				t.Errorf("CPUPressure = %+v", p)
			}
			if s.IOPressure != nil {
				t.Errorf("IOPressure = %+v without io.pressure", s.IOPressure)
			}
			if s.Timestamp.IsZero() {
				t.Error("no timestamp")
			}
		})
	}
}

func TestV2MissingAndEmpty(t *testing.T) {
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "empty"), nil)
	r, err := New(Options{Root: root, Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stat("/gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat of a missing cgroup: %v, want ErrNotFound", err)
	}
	// A cgroup whose controllers are not enabled has no files: all zeros.
	s, err := r.Stat("/empty")
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU != (CPU{}) || s.Memory != (Memory{}) || s.Pids != (Pids{}) {
		t.Errorf("empty cgroup: %+v", s)
	}
	if _, err := r.Stat("relative"); err == nil {
		t.Error("Stat of a relative path succeeded")
	}
}

// v1Tree writes one cgroup v1 cgroup at path into each controller hierarchy.
func v1Tree(t *testing.T, root, path string, swap bool) {
	writeTree(t, filepath.Join(root, "cpuacct", path), map[string]string{
		"cpuacct.usage":        "7000000000\n",
		"cpuacct.usage_percpu": "3000000000 4000000000\n",
		"cpuacct.stat":         "user 500\nsystem 150\n",
	})
	writeTree(t, filepath.Join(root, "cpu", path), map[string]string{
		"cpu.stat": "nr_periods 12\nnr_throttled 2\nthrottled_time 3000000\n",
	})
	mem := map[string]string{
		"memory.stat": "cache 100\nrss 200\n" +
			"total_cache 6000000\ntotal_rss 18000000\ntotal_mapped_file 500000\n" +
			"total_inactive_file 4000000\ntotal_active_file 2000000\n" +
			"total_pgfault 999\ntotal_pgmajfault 9\n",
		"memory.usage_in_bytes":     "25000000\n",
		"memory.max_usage_in_bytes": "26000000\n",
		"memory.failcnt":            "2\n",
		"memory.limit_in_bytes":     "9223372036854771712\n",
		"memory.oom_control":        "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
	}
	if swap {
		mem["memory.memsw.usage_in_bytes"] = "25008192\n"
		mem["memory.memsw.max_usage_in_bytes"] = "26000000\n"
		mem["memory.memsw.failcnt"] = "0\n"
		mem["memory.memsw.limit_in_bytes"] = "9223372036854771712\n"
	}
	writeTree(t, filepath.Join(root, "memory", path), mem)
	writeTree(t, filepath.Join(root, "pids", path), map[string]string{"pids.current": "4\n", "pids.max": "100\n"})
	// OptionalSwap looks for memsw at the hierarchy's root.
	if swap {
		writeTree(t, filepath.Join(root, "memory"), map[string]string{"memory.memsw.usage_in_bytes": "0\n"})
	}
}

func TestV1OnFakeTree(t *testing.T) {
	for _, swap := range []bool{true, false} {
		root := t.TempDir()
		v1Tree(t, root, "nodekit/pod1/c1", swap)
		r, err := New(Options{Root: root, Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.Stat("/nodekit/pod1/c1")
		if err != nil {
			t.Fatal(err)
		}
		// cpuacct.stat counts USER_HZ (100) ticks.
		wantCPU := CPU{UsageNanos: 7000000000, UserNanos: 5000000000, SystemNanos: 1500000000, Periods: 12, ThrottledPeriods: 2, ThrottledNanos: 3000000}
		if s.CPU != wantCPU {
			t.Errorf("swap %v: CPU = %+v, want %+v", swap, s.CPU, wantCPU)
		}
		var wantSwap uint64
		if swap {
			wantSwap = 8192
		}
		want := Memory{
			Usage: 25000000, WorkingSet: 21000000, RSS: 18000000, Cache: 6000000, MappedFile: 500000,
			ActiveFile: 2000000, InactiveFile: 4000000, MaxUsage: 26000000, Swap: wantSwap,
			PageFaults: 999, MajorPageFaults: 9, Failcnt: 2,
		}
		if s.Memory != want {
			t.Errorf("swap %v: Memory = %+v, want %+v", swap, s.Memory, want)
		}
		if s.Pids != (Pids{Current: 4, Limit: 100}) {
			t.Errorf("Pids = %+v", s.Pids)
		}
		if _, err := r.Stat("/nodekit/pod1/gone"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat of a missing cgroup: %v, want ErrNotFound", err)
		}
	}
}

func TestV1NeedsHierarchies(t *testing.T) {
	if _, err := New(Options{Root: t.TempDir(), Version: 1}); err == nil {
		t.Fatal("New succeeded on a root without hierarchies")
	}
}

// On this host: the version is detected and the root cgroup has CPU time.
func TestHostRoot(t *testing.T) {
	if _, err := os.Stat(DefaultRoot); err != nil {
		testenv.Skip(t, "no "+DefaultRoot+": "+err.Error())
	}
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := detectVersion(DefaultRoot)
	if r.Version() != want {
		t.Fatalf("Version() = %d, want %d", r.Version(), want)
	}
	s, err := r.Stat("/")
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU.UsageNanos == 0 {
		t.Errorf("root cgroup of a running host used no CPU: %+v", s)
	}
	if _, err := r.Stat("/nodekit-no-such-cgroup-" + t.Name()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat of a missing cgroup: %v, want ErrNotFound", err)
	}
}
