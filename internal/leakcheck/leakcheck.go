package leakcheck

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Mounts returns the mount points strictly below dir, in mount table order (a
// mount after the mounts it stacks on).
func Mounts(t testing.TB, dir string) []string {
	t.Helper()
	dir = filepath.Clean(dir)
	below := strings.TrimSuffix(dir, "/") + "/"
	infos, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.Mountpoint == dir || !strings.HasPrefix(m.Mountpoint, below), false
	})
	if err != nil {
		t.Errorf("read the mount table: %v", err)
		return nil
	}
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	return out
}

// NoMounts fails t for the mounts left below each of dirs and detaches them,
// the last mounted first.
func NoMounts(t testing.TB, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		mounts := Mounts(t, dir)
		if len(mounts) == 0 {
			continue
		}
		t.Errorf("leaked mounts: %v", mounts)
		for _, m := range slices.Backward(mounts) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				t.Logf("detach the leaked mount %s: %v", m, err)
			}
		}
	}
}

// CgroupMounts returns the mount points of the cgroup hierarchies (cgroup v1
// and v2).
func CgroupMounts(t testing.TB) []string {
	t.Helper()
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		t.Fatalf("read the mount table: %v", err)
	}
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	return out
}

// Monitors lists the nodekit-monitor processes working for the shim whose
// state directory is state (their command line names it), each as its pid and
// command line.
func Monitors(t testing.TB, state string) []string {
	t.Helper()
	procs, err := os.ReadDir("/proc")
	if err != nil {
		t.Errorf("list processes: %v", err)
	}
	var out []string
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if strings.HasSuffix(args[0], "nodekit-monitor") && strings.Contains(string(cmdline), state) {
			out = append(out, p.Name()+" "+strings.Join(args, " "))
		}
	}
	return out
}

// NoMonitors fails t for the nodekit-monitor processes working for the shim of
// state.
func NoMonitors(t testing.TB, state string) {
	t.Helper()
	if procs := Monitors(t, state); len(procs) > 0 {
		t.Errorf("leaked monitor processes: %v", procs)
	}
}

// NoRuncState fails t for runc containers left in the shim's runc root
// (<state>/runc).
func NoRuncState(t testing.TB, state string) {
	t.Helper()
	root := filepath.Join(state, "runc")
	if entries, _ := os.ReadDir(root); len(entries) > 0 {
		t.Errorf("leaked runtime state: %d containers under %s", len(entries), root)
	}
}

// NoCgroups fails t for the cgroups below parent, in any hierarchy, but the
// allowed ones (paths relative to parent, such as "kubepods"), and removes
// those it finds, the deepest first.
func NoCgroups(t testing.TB, parent string, allowed ...string) {
	t.Helper()
	for _, m := range CgroupMounts(t) {
		dir := filepath.Join(m, parent)
		var leaked []string
		for _, p := range tree(dir) {
			if rel, _ := filepath.Rel(dir, p); rel != "." && !slices.Contains(allowed, rel) {
				leaked = append(leaked, p)
			}
		}
		if len(leaked) == 0 {
			continue
		}
		t.Errorf("leaked cgroups: %v", leaked)
		for _, p := range slices.Backward(leaked) {
			os.Remove(p)
		}
	}
}

// RemoveCgroups removes parent and every cgroup below it in every hierarchy,
// the deepest first. A cgroup that still holds a process stays; that is no
// failure (see NoCgroups and CgroupRemovable).
func RemoveCgroups(t testing.TB, parent string) {
	t.Helper()
	for _, m := range CgroupMounts(t) {
		for _, p := range slices.Backward(tree(filepath.Join(m, parent))) {
			os.Remove(p)
		}
	}
}

// CgroupRemovable removes parent in every hierarchy, failing t when it is not
// gone within the time given: an empty cgroup that cannot be removed means
// something still lives in it.
func CgroupRemovable(t testing.TB, parent string, within time.Duration) {
	t.Helper()
	for _, m := range CgroupMounts(t) {
		dir := filepath.Join(m, parent)
		deadline := time.Now().Add(within)
		for {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("the test's cgroup parent %s is not removable after %s: %v", dir, within, err)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// tree lists dir and the directories below it, parents before children.
func tree(dir string) []string {
	var out []string
	// The callback skips what cannot be read and never fails the walk.
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}
