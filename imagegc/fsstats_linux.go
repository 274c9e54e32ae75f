package imagegc

import "golang.org/x/sys/unix"

// statfs returns the size of the filesystem holding path and the bytes
// available to unprivileged users, as df reports them.
func statfs(path string) (capacity, available uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return st.Blocks * bs, st.Bavail * bs, nil
}
