package cri

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
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
	if err := mountOverlayData(target, data); err != nil {
		return fmt.Errorf("mount overlay at %s: %w", target, err)
	}
	return nil
}

// mountOverlayData mounts an overlay with the options data, volatile when the
// kernel offers it (5.10+): the writable layer of a container is thrown away
// with it, so overlayfs need not sync it, and unmounting it then does not flush
// the whole filesystem under --root (milliseconds per container, more under
// load). containerd mounts its overlays the same way.
func mountOverlayData(target, data string) error {
	if err := unix.Mount("overlay", target, "overlay", 0, data+",volatile"); err == nil || !errors.Is(err, unix.EINVAL) {
		return err
	}
	return unix.Mount("overlay", target, "overlay", 0, data)
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

// mountOverlayIDMapped mounts the overlay of mountOverlay for a container in a
// user namespace: each layer is first cloned as a detached mount id-mapped by
// that user namespace (the file usernsPath), so files the image gives to root
// belong to the container's root while the layers on disk stay shared. The
// overlay holds the detached mounts; nothing else refers to them, so they go
// with it. The writable layer is not id-mapped (overlayfs creates its work
// directory as the node's root, which such a mapping cannot represent): its top
// belongs to rootUID:rootGID, the container's root on the node, and copy-up keeps
// the owners the id-mapped lower layers show, so the container's files have
// the ids its user namespace maps.
func mountOverlayIDMapped(lowers []string, upper, work, target, usernsPath string, rootUID, rootGID int) error {
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.Chown(upper, rootUID, rootGID); err != nil {
		return err
	}
	userns, err := unix.Open(usernsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open user namespace %s: %w", usernsPath, err)
	}
	defer unix.Close(userns)
	idmapped := func(dir string) (int, error) {
		fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return -1, fmt.Errorf("clone mount of %s: %w", dir, err)
		}
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns)}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("id-map mount of %s: %w", dir, err)
		}
		return fd, nil
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	top := make([]string, len(lowers))
	for i, l := range lowers {
		fd, err := idmapped(l)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
		top[len(lowers)-1-i] = fmt.Sprintf("/proc/self/fd/%d", fd)
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(top, ":"), upper, work)
	if len(data) >= unix.Getpagesize() {
		return fmt.Errorf("mount overlay at %s: %d layers make mount options of %d bytes, over the kernel's limit of one page", target, len(lowers), len(data))
	}
	if err := mountOverlayData(target, data); err != nil {
		return fmt.Errorf("mount id-mapped overlay at %s: %w", target, err)
	}
	return nil
}

// mountImageLayers mounts an image's layers (base first) read-only at target,
// for an image volume: an overlay with the layers as lower directories only (no
// upper directory, so the overlay itself is read-only), or, for an image of a
// single layer, which overlayfs cannot mount without an upper directory, a
// read-only bind of that layer. With usernsPath the layers are id-mapped by
// that user namespace first, as a container's rootfs is (mountOverlayIDMapped),
// so the image's files belong to the ids the pod's containers know them by.
func mountImageLayers(lowers []string, target, usernsPath string) error {
	if len(lowers) == 0 {
		return fmt.Errorf("mount image at %s: the image has no layers", target)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if usernsPath == "" && len(lowers) == 1 {
		if err := unix.Mount(lowers[0], target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind the image layer %s at %s: %w", lowers[0], target, err)
		}
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH) // undo the bind; the remount's error is the one to report
			return fmt.Errorf("make the image layer bound at %s read-only: %w", target, err)
		}
		return nil
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	dirs := lowers
	if usernsPath != "" {
		userns, err := unix.Open(usernsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open user namespace %s: %w", usernsPath, err)
		}
		defer unix.Close(userns)
		dirs = make([]string, 0, len(lowers))
		for _, l := range lowers {
			fd, err := unix.OpenTree(unix.AT_FDCWD, l, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
			if err != nil {
				return fmt.Errorf("clone mount of %s: %w", l, err)
			}
			fds = append(fds, fd)
			attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY, Userns_fd: uint64(userns)}
			if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
				return fmt.Errorf("id-map mount of %s: %w", l, err)
			}
			dirs = append(dirs, fmt.Sprintf("/proc/self/fd/%d", fd))
		}
		if len(fds) == 1 {
			// One layer: the detached id-mapped, read-only clone is the volume.
			if err := unix.MoveMount(fds[0], "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
				return fmt.Errorf("mount the id-mapped image layer %s at %s: %w", lowers[0], target, err)
			}
			return nil
		}
	}
	top := make([]string, len(dirs))
	for i, d := range dirs {
		top[len(dirs)-1-i] = d
	}
	data := "lowerdir=" + strings.Join(top, ":")
	if len(data) >= unix.Getpagesize() {
		return fmt.Errorf("mount image at %s: %d layers make mount options of %d bytes, over the kernel's limit of one page", target, len(lowers), len(data))
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, data); err != nil {
		return fmt.Errorf("mount read-only overlay of %d image layers at %s: %w", len(lowers), target, err)
	}
	return nil
}

// isMountPoint reports whether p is a mount point; a missing p is not.
func isMountPoint(p string) (bool, error) {
	ok, err := mountinfo.Mounted(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return ok, err
}
