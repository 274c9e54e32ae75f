package diskusage

import (
	"io/fs"
	"syscall"
)

// allocated is the space allocated to a file (its 512-byte blocks) and its
// inode number; ok is false when info has no stat_t.
func allocated(info fs.FileInfo) (bytes, ino uint64, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Blocks) * 512, st.Ino, true
}
