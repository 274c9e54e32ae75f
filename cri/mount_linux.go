package cri

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of the given size at dir.
func mountTmpfs(dir string, sizeBytes int64, flags uintptr) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data := fmt.Sprintf("mode=1777,size=%d", sizeBytes)
	if err := unix.Mount("shm", dir, "tmpfs", flags, data); err != nil {
		return fmt.Errorf("mount tmpfs at %s: %w", dir, err)
	}
	return nil
}

// mountOverlay mounts an overlay with the given lower dirs (base first) at target.
func mountOverlay(lowers []string, upper, work, target string) error {
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	top := make([]string, len(lowers))
	for i, l := range lowers {
		top[len(lowers)-1-i] = l
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(top, ":"), upper, work)
	if len(data) >= unix.Getpagesize() {
		return fmt.Errorf("mount overlay at %s: %d layers make mount options of %d bytes, over the kernel's limit of one page", target, len(lowers), len(data))
	}
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount overlay at %s: %w", target, err)
	}
	return nil
}

// unmount unmounts target, retrying briefly while it is busy and detaching as the
// last resort. A target that is not mounted is not an error.
func unmount(target string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil:
			continue // unmount stacked mounts too
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(10 * time.Millisecond)
			continue
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
			return nil
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

const mountNoSuidDevExec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
