package podruntime

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// emptyDirPlugin is the kubelet's directory name for emptyDir volumes.
const emptyDirPlugin = "kubernetes.io~empty-dir"

// setupVolumes prepares the pod's volumes and returns their host paths by
// name. emptyDir is a directory under the pod dir (medium Memory: a tmpfs
// mounted there, sizeLimit as its size); hostPath is checked against its type
// (DirectoryOrCreate and FileOrCreate create what is missing). Other volume
// types need an API server or a volume plugin and are refused.
func (m *Manager) setupVolumes(pod *v1.Pod) (map[string]string, error) {
	vols := map[string]string{}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.Name == "" || v.Name == "." || v.Name == ".." || strings.ContainsRune(v.Name, '/') {
			return nil, fmt.Errorf("volumes[%d]: invalid name %q", i, v.Name)
		}
		switch {
		case v.EmptyDir != nil:
			dir := filepath.Join(m.podDir(pod.UID), "volumes", emptyDirPlugin, v.Name)
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("volume %q: emptyDir: %w", v.Name, err)
			}
			switch v.EmptyDir.Medium {
			case v1.StorageMediumDefault:
			case v1.StorageMediumMemory:
				var size int64
				if v.EmptyDir.SizeLimit != nil {
					size = v.EmptyDir.SizeLimit.Value()
				}
				if err := mountTmpfs(dir, size); err != nil {
					return nil, fmt.Errorf("volume %q: emptyDir medium Memory: %w", v.Name, err)
				}
			default:
				return nil, fmt.Errorf("volume %q: emptyDir medium %q is not supported", v.Name, v.EmptyDir.Medium)
			}
			// World-writable, as the kubelet's emptyDir (the umask is not applied).
			if err := os.Chmod(dir, 0o777); err != nil {
				return nil, fmt.Errorf("volume %q: emptyDir: %w", v.Name, err)
			}
			vols[v.Name] = dir
		case v.HostPath != nil:
			if err := checkHostPath(v.HostPath.Path, v.HostPath.Type); err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			vols[v.Name] = v.HostPath.Path
		default:
			return nil, fmt.Errorf("volume %q: only emptyDir and hostPath volumes are supported", v.Name)
		}
	}
	return vols, nil
}

// checkHostPath enforces a hostPath volume's type (the kubelet's
// checkTypeInternal).
func checkHostPath(path string, t *v1.HostPathType) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("hostPath %q: not an absolute path", path)
	}
	typ := v1.HostPathUnset
	if t != nil {
		typ = *t
	}
	fi, err := os.Stat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hostPath type check failed: %w", err)
	}
	switch typ {
	case v1.HostPathUnset:
		return nil
	case v1.HostPathDirectoryOrCreate:
		if !exists {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("hostPath %s: create directory: %w", path, err)
			}
			return nil
		}
		fallthrough
	case v1.HostPathDirectory:
		if !exists || !fi.IsDir() {
			return fmt.Errorf("hostPath type check failed: %s is not a directory", path)
		}
	case v1.HostPathFileOrCreate:
		if !exists {
			// As upstream, the parent directory is not created.
			f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return fmt.Errorf("hostPath %s: create file: %w", path, err)
			}
			return f.Close()
		}
		fallthrough
	case v1.HostPathFile:
		if !exists || !fi.Mode().IsRegular() {
			return fmt.Errorf("hostPath type check failed: %s is not a file", path)
		}
	case v1.HostPathSocket:
		if !exists || fi.Mode()&fs.ModeSocket == 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a socket file", path)
		}
	case v1.HostPathCharDev:
		if !exists || fi.Mode()&fs.ModeCharDevice == 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a character device", path)
		}
	case v1.HostPathBlockDev:
		if !exists || fi.Mode()&fs.ModeDevice == 0 || fi.Mode()&fs.ModeCharDevice != 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a block device", path)
		}
	default:
		return fmt.Errorf("hostPath %s: type %q is not supported", path, typ)
	}
	return nil
}

// containerMounts turns a container's volumeMounts into CRI mounts (subPath and
// subPathExpr included), plus the termination message file.
func (m *Manager) containerMounts(pod *v1.Pod, c *v1.Container, vols map[string]string, env []envVar) ([]*runtimeapi.Mount, error) {
	var out []*runtimeapi.Mount
	for i, vm := range c.VolumeMounts {
		root, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMounts[%d]: volume %q not found", i, vm.Name)
		}
		host := root
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expandAll([]string{vm.SubPathExpr}, env)[0]
		}
		if sub != "" {
			p, err := subPath(root, sub)
			if err != nil {
				return nil, fmt.Errorf("volumeMounts[%d] %s: %w", i, vm.Name, err)
			}
			host = p
		}
		mnt := &runtimeapi.Mount{ContainerPath: vm.MountPath, HostPath: host, Readonly: vm.ReadOnly}
		if vm.MountPropagation != nil {
			switch *vm.MountPropagation {
			case v1.MountPropagationHostToContainer:
				mnt.Propagation = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
			case v1.MountPropagationBidirectional:
				mnt.Propagation = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
			}
		}
		out = append(out, mnt)
	}
	if c.TerminationMessagePath != "" {
		f, err := m.terminationMessageFile(pod, c)
		if err != nil {
			m.log.Warn("create termination message file", "pod", podRef(pod), "container", c.Name, "err", err)
		} else {
			out = append(out, &runtimeapi.Mount{HostPath: f, ContainerPath: c.TerminationMessagePath})
		}
	}
	return out, nil
}

// subPath resolves sub inside a volume root, creating it as a directory if it
// does not exist; it must not leave the volume (no .., no symlink out).
func subPath(root, sub string) (string, error) {
	if filepath.IsAbs(sub) {
		return "", fmt.Errorf("subPath %q must be relative", sub)
	}
	for _, e := range strings.Split(filepath.ToSlash(sub), "/") {
		if e == ".." {
			return "", fmt.Errorf("subPath %q must not contain '..'", sub)
		}
	}
	p := filepath.Join(root, sub)
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(p, 0o750); err != nil {
			return "", fmt.Errorf("subPath %q: %w", sub, err)
		}
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("volume root: %w", err)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("subPath %q: %w", sub, err)
	}
	if real != realRoot && !strings.HasPrefix(real, realRoot+string(filepath.Separator)) {
		return "", fmt.Errorf("subPath %q resolves outside its volume", sub)
	}
	return p, nil
}

// terminationMessageFile creates the host file a container instance writes its
// termination message into: <pod dir>/containers/<name>/<random>.
func (m *Manager) terminationMessageFile(pod *v1.Pod, c *v1.Container) (string, error) {
	dir := filepath.Join(m.podDir(pod.UID), "containers", c.Name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	p := filepath.Join(dir, hex.EncodeToString(b[:]))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	// Any user in the container may write its message (the umask is not applied).
	return p, os.Chmod(p, 0o666)
}
