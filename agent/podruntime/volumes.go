package podruntime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/volumes"
)

// containerMounts turns a container's volumeMounts into CRI mounts (subPath
// and subPathExpr bound safely by the volume manager; image volumes by the
// image refs pulled for them), plus the termination message file.
func (m *Manager) containerMounts(pod *v1.Pod, c *v1.Container, vols map[string]volumes.Volume, env []envVar, imageVols map[string]string) ([]*runtimeapi.Mount, error) {
	expand := func(s string) string { return expandAll([]string{s}, env)[0] }
	mounts, err := m.volumes.ContainerMounts(pod, c, vols, expand)
	if err != nil {
		return nil, err
	}
	out := make([]*runtimeapi.Mount, 0, len(mounts)+1)
	for _, vm := range mounts {
		mnt := &runtimeapi.Mount{ContainerPath: vm.ContainerPath, HostPath: vm.HostPath, Readonly: vm.ReadOnly}
		if vm.Image != "" {
			ref, ok := imageVols[vm.Image]
			if !ok {
				return nil, fmt.Errorf("image volume %q was not pulled", vm.Image)
			}
			mnt.Image = &runtimeapi.ImageSpec{Image: ref, UserSpecifiedImage: vm.Image}
			mnt.ImageSubPath = vm.ImageSubPath
		}
		switch vm.Propagation {
		case v1.MountPropagationHostToContainer:
			mnt.Propagation = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
		case v1.MountPropagationBidirectional:
			mnt.Propagation = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
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

// ensureVolumeImages pulls, per each volume's pullPolicy, the images of the
// image volumes the container mounts (the kubelet's getImageVolumes), and
// returns the runtime's ref of each by reference.
func (m *Manager) ensureVolumeImages(ctx context.Context, e *startEnv, c *v1.Container) (map[string]string, *failure) {
	var out map[string]string
	for _, vm := range c.VolumeMounts {
		vol, ok := e.vols[vm.Name]
		if !ok || vol.Image == nil {
			continue
		}
		if _, done := out[vol.Image.Reference]; done {
			continue
		}
		img, f := m.ensureImageRef(ctx, e.pod, vol.Image.Reference, vol.Image.PullPolicy, e.secrets, e.sandboxCfg, "volume "+vm.Name, "")
		if f != nil {
			return nil, f
		}
		if out == nil {
			out = map[string]string{}
		}
		out[vol.Image.Reference] = img.ref
	}
	return out, nil
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
