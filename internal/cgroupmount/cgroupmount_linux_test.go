package cgroupmount

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestPointsAreCgroupFilesystems checks every point Points finds on this
// machine against statfs: a cgroup (v1) or cgroup2 filesystem.
func TestPointsAreCgroupFilesystems(t *testing.T) {
	ps, err := Points()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil {
			t.Errorf("statfs %s: %v", p, err)
			continue
		}
		if st.Type != unix.CGROUP_SUPER_MAGIC && st.Type != unix.CGROUP2_SUPER_MAGIC {
			t.Errorf("%s: filesystem type %#x, not cgroup or cgroup2", p, st.Type)
		}
	}
}
