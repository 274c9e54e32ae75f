package agent

import (
	"io/fs"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// sameDevice reports whether two paths are on the same filesystem.
func sameDevice(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return true
	}
	return sa.Dev == sb.Dev
}

// diskUsage is the space (allocated blocks) and the inodes used under dir,
// without crossing into other filesystems.
func diskUsage(dir string) (bytes, inodes uint64, ok bool) {
	var root syscall.Stat_t
	if syscall.Lstat(dir, &root) != nil {
		return 0, 0, false
	}
	// The callback skips what cannot be read and never fails the walk.
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Lstat(path, &st) != nil {
			return nil
		}
		if st.Dev != root.Dev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		bytes += uint64(st.Blocks) * 512
		inodes++
		return nil
	})
	return bytes, inodes, true
}

// fsFigures are the size, the space available to unprivileged users, and the
// inodes (all and free) of path's filesystem.
func fsFigures(path string) (capacity, available, inodes, inodesFree uint64, ok bool) {
	var st unix.Statfs_t
	if path == "" || unix.Statfs(path, &st) != nil {
		return 0, 0, 0, 0, false
	}
	bs := uint64(st.Bsize)
	return st.Blocks * bs, st.Bavail * bs, st.Files, st.Ffree, true
}
