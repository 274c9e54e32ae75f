package leakcheck

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestNothingLeakedInAFreshDirectory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/mountinfo")
	}
	dir := t.TempDir()
	if m := Mounts(t, dir); len(m) != 0 {
		t.Errorf("mounts below a fresh directory: %v", m)
	}
	NoMounts(t, dir)
	NoMonitors(t, dir)
	NoRuncState(t, dir)
	parent := "/nodekit-leakcheck-" + filepath.Base(dir)
	NoCgroups(t, parent)
	RemoveCgroups(t, parent)
	CgroupRemovable(t, parent, time.Second)
}

func TestMountsExcludesTheDirectoryItself(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/mountinfo")
	}
	// / is a mount point: it is not below itself, but /proc is.
	m := Mounts(t, "/")
	for _, p := range m {
		if p == "/" {
			t.Errorf("Mounts(/) lists / itself: %v", m)
		}
	}
	found := false
	for _, p := range m {
		found = found || p == "/proc"
	}
	if !found {
		t.Errorf("Mounts(/) does not list /proc: %v", m)
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err == nil && len(CgroupMounts(t)) == 0 {
		t.Error("no cgroup hierarchy found although /sys/fs/cgroup exists")
	}
}

func TestTreeListsParentsFirst(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := tree(dir)
	want := []string{dir, filepath.Join(dir, "a"), filepath.Join(dir, "a", "b")}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("tree = %v, want %v", got, want)
	}
	if got := tree(filepath.Join(dir, "missing")); len(got) != 0 {
		t.Errorf("tree of a missing directory = %v", got)
	}
}
