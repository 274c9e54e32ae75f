package cgroupmount

import (
	"fmt"

	"github.com/moby/sys/mountinfo"
)

// Points lists the mount points of every cgroup hierarchy (filesystem types
// cgroup and cgroup2) in this mount namespace, each once (a hierarchy mounted
// twice at one point), in mountinfo's order.
func Points() ([]string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("cgroup mounts: %w", err)
	}
	return points(mounts), nil
}

func points(mounts []*mountinfo.Info) []string {
	out := make([]string, 0, len(mounts))
	seen := make(map[string]bool, len(mounts))
	for _, m := range mounts {
		if !seen[m.Mountpoint] {
			seen[m.Mountpoint] = true
			out = append(out, m.Mountpoint)
		}
	}
	return out
}
