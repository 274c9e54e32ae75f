package cni

import "golang.org/x/sys/unix"

// isNetNS reports whether path is a namespace file (a pinned nsfs mount), which a
// plugin can enter.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if path == "" || unix.Statfs(path, &st) != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}
