package stats

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// statFs reads the capacity and inodes of the filesystem holding path, sized in
// fragments as df does.
func statFs(path string) (*fsInfo, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, err
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return &fsInfo{
		capacity:   st.Blocks * bs,
		available:  st.Bavail * bs,
		used:       (st.Blocks - min(st.Bfree, st.Blocks)) * bs,
		inodes:     st.Files,
		inodesFree: st.Ffree,
	}, nil
}

// dirUsage sums the allocated bytes and the inodes of everything under dir,
// dir included, counting hard-linked files once. Entries that vanish during the
// walk are skipped; a missing dir is an fs.ErrNotExist error.
func dirUsage(dir string) (bytes, inodes uint64, err error) {
	seen := map[uint64]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			bytes += uint64(info.Size())
			inodes++
			return nil
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		bytes += uint64(st.Blocks) * 512
		inodes++
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, 0, err
	}
	return bytes, inodes, err
}
