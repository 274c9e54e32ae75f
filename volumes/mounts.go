package volumes

import (
	"fmt"
	"path"
	"path/filepath"
	"strconv"

	v1 "k8s.io/api/core/v1"
)

// ContainerMounts turns a container's volumeMounts into mounts for the
// runtime. vols are the pod's volumes from SetUp; expand expands $(VAR)
// references of subPathExpr from the container's environment.
//
// A subPath is never handed to the runtime as a path: it is resolved, opened
// component by component without following symlinks (so a symlink swapped in
// by a container after the check cannot redirect it), and the opened file is
// bind-mounted at <pod dir>/volume-subpaths/<volume>/<container>/<index>,
// which the runtime mounts. Such a mount pins what it found: a subPath of a
// configMap volume does not follow later updates (as upstream). A missing
// subPath of a writable volume is created as a directory.
func (m *Manager) ContainerMounts(pod *v1.Pod, c *v1.Container, vols map[string]Volume, expand func(string) string) ([]Mount, error) {
	out := make([]Mount, 0, len(c.VolumeMounts))
	for i, vm := range c.VolumeMounts {
		vol, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMounts[%d]: volume %q not found", i, vm.Name)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			if expand == nil {
				expand = func(s string) string { return s }
			}
			sub = expand(vm.SubPathExpr)
		}
		if sub != "" {
			if err := validSubPath(sub); err != nil {
				return nil, fmt.Errorf("volumeMounts[%d] %s: %w", i, vm.Name, err)
			}
		}
		mnt := Mount{ContainerPath: vm.MountPath, ReadOnly: vm.ReadOnly || vol.ReadOnly}
		if vm.MountPropagation != nil {
			mnt.Propagation = *vm.MountPropagation
		}
		switch {
		case vol.Image != nil:
			mnt.Image, mnt.ImageSubPath = vol.Image.Reference, sub
		case sub == "":
			mnt.HostPath = vol.Path
		default:
			target := filepath.Join(m.PodDir(pod.UID), "volume-subpaths", vm.Name, c.Name, strconv.Itoa(i))
			if err := bindSubPath(vol.Path, sub, target, !vol.ReadOnly); err != nil {
				return nil, fmt.Errorf("volumeMounts[%d] %s: subPath %q: %w", i, vm.Name, sub, err)
			}
			mnt.HostPath = target
		}
		out = append(out, mnt)
	}
	return out, nil
}

// validSubPath refuses absolute paths and backsteps (the kubelet's checks).
func validSubPath(sub string) error {
	if path.IsAbs(sub) || filepath.IsAbs(sub) {
		return fmt.Errorf("subPath %q must be a relative path", sub)
	}
	for _, e := range splitPath(filepath.ToSlash(sub)) {
		if e == ".." {
			return fmt.Errorf("subPath %q must not contain '..'", sub)
		}
	}
	return nil
}
