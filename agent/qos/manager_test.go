package qos

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// fakeTree makes a cgroup mount of plain directories: cgroup v1 hierarchies, or
// the v2 unified one with its controllers.
func fakeTree(t *testing.T, version int) string {
	t.Helper()
	dir := t.TempDir()
	if version == 2 {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpuset cpu io memory pids\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, c := range []string{"cpu", "cpuacct", "memory", "pids", "freezer"} {
		if err := os.MkdirAll(filepath.Join(dir, c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readValue(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.TrimSpace(string(data))
}

// The manager on fake trees of every version and driver: kubepods limited to
// allocatable, tiers, a pod per class with its resources, the tiers' shares,
// cleanup of pods nobody keeps. The real cgroups are exercised by the agent's
// integration test on this machine's cgroup v1.
func TestManagerOnFakeTrees(t *testing.T) {
	for _, tc := range []struct {
		version int
		driver  string
	}{{1, DriverCgroupfs}, {1, DriverSystemd}, {2, DriverCgroupfs}, {2, DriverSystemd}} {
		t.Run(tc.driver+"-v"+string(rune('0'+tc.version)), func(t *testing.T) {
			mount := fakeTree(t, tc.version)
			m, err := New(Options{Driver: tc.driver, Mountpoint: mount, Version: tc.version, Logger: slog.New(slog.DiscardHandler),
				Pod:             PodOptions{CPUCFSQuota: true, PodPidsLimit: 100},
				NodeAllocatable: rl("cpu", "2", "memory", "1Gi")})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Start(); err != nil {
				t.Fatal(err)
			}
			file := func(cgroup, v1file, v2file string) string {
				if tc.version == 2 {
					return filepath.Join(mount, cgroup, v2file)
				}
				ctl := map[string]string{"cpu": "cpu", "memory": "memory", "pids": "pids"}[strings.SplitN(v1file, ".", 2)[0]]
				return filepath.Join(mount, ctl, cgroup, v1file)
			}
			kp := m.Path("")
			if tc.version == 1 {
				if got := readValue(t, file(kp, "cpu.shares", "")); got != "2048" {
					t.Errorf("kubepods cpu.shares = %s, want 2048", got)
				}
				if got := readValue(t, file(kp, "memory.limit_in_bytes", "")); got != "1073741824" {
					t.Errorf("kubepods memory limit = %s", got)
				}
			} else {
				if got := readValue(t, file(kp, "", "cpu.weight")); got != "79" {
					t.Errorf("kubepods cpu.weight = %s, want 79", got)
				}
				if got := readValue(t, file(kp, "", "memory.max")); got != "1073741824" {
					t.Errorf("kubepods memory.max = %s", got)
				}
			}

			g := pod(ctr("a", rl("cpu", "500m", "memory", "64Mi"), rl("cpu", "500m", "memory", "64Mi")))
			g.UID = "g-1"
			b := pod(ctr("a", rl("cpu", "250m"), nil))
			b.UID = "b-1"
			be := pod(ctr("a", nil, nil))
			be.UID = "e-1"
			for _, p := range []*v1.Pod{g, b, be} {
				parent, err := m.EnsurePod(p)
				if err != nil {
					t.Fatal(err)
				}
				if parent != m.CgroupParent(p) {
					t.Errorf("EnsurePod parent %q, CgroupParent %q", parent, m.CgroupParent(p))
				}
			}
			gp := m.Path("g-1")
			if tc.version == 1 {
				for f, want := range map[string]string{"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000", "memory.limit_in_bytes": "67108864", "pids.max": "100"} {
					if got := readValue(t, file(gp, f, "")); got != want {
						t.Errorf("guaranteed pod %s = %s, want %s", f, got, want)
					}
				}
				if got := readValue(t, file(m.Path("e-1"), "cpu.shares", "")); got != "2" {
					t.Errorf("best-effort pod cpu.shares = %s", got)
				}
			} else {
				for f, want := range map[string]string{"cpu.weight": "20", "cpu.max": "50000 100000", "memory.max": "67108864", "pids.max": "100"} {
					if got := readValue(t, file(gp, "", f)); got != want {
						t.Errorf("guaranteed pod %s = %s, want %s", f, got, want)
					}
				}
			}
			if err := m.UpdateQOS([]*v1.Pod{g, b, be}); err != nil {
				t.Fatal(err)
			}
			burstable := filepath.Dir(m.Path("b-1"))
			if tc.version == 1 {
				if got := readValue(t, file(burstable, "cpu.shares", "")); got != "256" {
					t.Errorf("burstable tier cpu.shares = %s, want 256", got)
				}
			}

			found, err := m.PodCgroups()
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != 3 || found["g-1"] == "" || found["b-1"] == "" || found["e-1"] == "" {
				t.Fatalf("PodCgroups = %v", found)
			}
			// A fresh manager (an agent restart) finds them and removes the orphans.
			m2, err := New(Options{Driver: tc.driver, Mountpoint: mount, Version: tc.version, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if pending, err := m2.Cleanup(func(uid types.UID) bool { return uid == "g-1" }); err != nil || len(pending) != 0 {
				t.Fatalf("Cleanup: pending %v, err %v", pending, err)
			}
			found, _ = m2.PodCgroups()
			if len(found) != 1 || found["g-1"] == "" {
				t.Fatalf("after cleanup: %v", found)
			}
			if err := m2.RemovePod("g-1"); err != nil {
				t.Fatal(err)
			}
			found, _ = m2.PodCgroups()
			if len(found) != 0 {
				t.Fatalf("after RemovePod: %v", found)
			}
		})
	}
}

func TestNewRejectsUnknownDriver(t *testing.T) {
	_, err := New(Options{Driver: "cgroupv3", Mountpoint: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "cgroupDriver") {
		t.Fatalf("err = %v, want one naming cgroupDriver", err)
	}
}
