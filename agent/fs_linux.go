package agent

import "golang.org/x/sys/unix"

// fsCapacity is the size in bytes of the filesystem holding path (0 if unknown).
func fsCapacity(path string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0
	}
	return int64(st.Blocks) * st.Bsize
}

// sameDevice reports whether two paths are on the same filesystem.
func sameDevice(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return true
	}
	return sa.Dev == sb.Dev
}
