package volumes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// afterCheck, when set (tests), runs between the subPath's resolution and its
// safe open: the window a container would use to swap a symlink in.
var afterCheck func()

// bindSubPath bind-mounts the subPath sub of the volume at root onto target,
// safely: sub is resolved once, must stay inside root, and is then opened one
// component at a time with O_NOFOLLOW from root's own descriptor, so nothing
// swapped in after the check is followed; the bind's source is the opened
// descriptor (/proc/self/fd/N), never the path. create makes a missing sub a
// directory (with the volume root's permissions) first. An existing bind of
// the same file at target is kept (an agent restart, a container restart).
func bindSubPath(root, sub, target string, create bool) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("resolve the volume: %w", err)
	}
	rel := filepath.Clean(sub)
	if _, err := os.Lstat(filepath.Join(realRoot, rel)); errors.Is(err, fs.ErrNotExist) && create {
		if err := safeMkdirAll(realRoot, rel); err != nil {
			return err
		}
	}
	resolved, err := filepath.EvalSymlinks(filepath.Join(realRoot, rel))
	if err != nil {
		return fmt.Errorf("resolve: %w", err)
	}
	inside, err := filepath.Rel(realRoot, resolved)
	if err != nil || inside == ".." || strings.HasPrefix(inside, "../") {
		return fmt.Errorf("resolves to %s, outside the volume", resolved)
	}
	if afterCheck != nil {
		afterCheck()
	}
	fd, err := openBeneath(realRoot, inside)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	source := fmt.Sprintf("/proc/self/fd/%d", fd)
	// The descriptor must name what was checked.
	if got, err := os.Readlink(source); err != nil || (got != realRoot && !strings.HasPrefix(got, realRoot+"/")) {
		return fmt.Errorf("opened %q, outside the volume", got)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR

	if mounted, _ := isMountPoint(target); mounted {
		var tst unix.Stat_t
		if err := unix.Stat(target, &tst); err == nil && tst.Dev == st.Dev && tst.Ino == st.Ino {
			return nil
		}
		// A bind of something else (the volume's content changed): replace it.
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount the stale bind %s: %w", target, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return err
	}
	if isDir {
		if err := os.Mkdir(target, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	} else if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(target, nil, 0o640); err != nil {
			return err
		}
	}
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s at %s: %w", filepath.Join(realRoot, inside), target, err)
	}
	return nil
}

// openBeneath opens rel under root one component at a time, refusing
// symlinks: the result is an O_PATH descriptor of what rel names inside root.
func openBeneath(root, rel string) (int, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open the volume: %w", err)
	}
	if rel == "." {
		return fd, nil
	}
	for _, name := range strings.Split(rel, "/") {
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", name, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(next, &st); err != nil {
			unix.Close(next)
			return -1, fmt.Errorf("stat %s: %w", name, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			unix.Close(next)
			return -1, fmt.Errorf("%s became a symlink after it was checked: refused", name)
		}
		fd = next
	}
	return fd, nil
}

// safeMkdirAll creates rel under root, one directory at a time from root's
// descriptor without following symlinks, with the root's permission bits.
func safeMkdirAll(root, rel string) error {
	info, err := os.Stat(root)
	if err != nil {
		return err
	}
	perm := uint32(info.Mode().Perm())
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the volume: %w", err)
	}
	defer func() { unix.Close(fd) }()
	for _, name := range strings.Split(rel, "/") {
		created := true
		if err := unix.Mkdirat(fd, name, perm); errors.Is(err, unix.EEXIST) {
			created = false
		} else if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", name, err)
		}
		unix.Close(fd)
		fd = next
		// mkdirat applied the umask: set the volume's bits.
		if !created {
			continue
		}
		if err := unix.Fchmodat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), perm, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", name, err)
		}
	}
	return nil
}
