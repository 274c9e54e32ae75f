package cri

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/cgroupmount"
)

// cgroupDriver names cgroups for pods and containers. The driver is picked once at
// start; nothing else branches on it.
type cgroupDriver interface {
	// podParent returns the cgroup parent for a pod, and whether the shim made it
	// up (and so must remove it with the pod).
	podParent(sandboxID, requested string) (parent string, own bool, err error)
	// containerPath returns the runtime-spec linux.cgroupsPath of a container.
	containerPath(parent, containerID string) string
	// removePod removes a pod parent the shim made up.
	removePod(parent string) error
	kind() runtime.CgroupDriver
}

func newCgroupDriver(name, defaultParent string) cgroupDriver {
	if name == SystemdDriver {
		if defaultParent == "" {
			defaultParent = "nodekit.slice"
		}
		return systemdCgroups{parent: defaultParent}
	}
	if defaultParent == "" {
		defaultParent = "/nodekit"
	}
	return fsCgroups{parent: defaultParent, mounts: cgroupmount.Points}
}

// fsCgroups is the cgroupfs driver: paths are directories in each hierarchy.
type fsCgroups struct {
	parent string
	mounts func() ([]string, error)
}

func (d fsCgroups) podParent(id, requested string) (string, bool, error) {
	if requested != "" {
		if !path.IsAbs(requested) || strings.Contains(requested, "..") {
			return "", false, fmt.Errorf("cgroup parent %q: want an absolute cgroupfs path", requested)
		}
		return path.Clean(requested), false, nil
	}
	return path.Join(d.parent, "pod"+id), true, nil
}

func (d fsCgroups) containerPath(parent, id string) string { return path.Join(parent, id) }

func (d fsCgroups) removePod(parent string) error {
	mounts, err := d.mounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := os.Remove(filepath.Join(m, parent)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", filepath.Join(m, parent), err))
		}
	}
	return errors.Join(errs...)
}

func (fsCgroups) kind() runtime.CgroupDriver { return runtime.CgroupDriver_CGROUPFS }

// systemdCgroups is the systemd driver: parents are slices, containers are scopes
// ("slice:prefix:name" in runc's notation).
type systemdCgroups struct{ parent string }

func (d systemdCgroups) podParent(id, requested string) (string, bool, error) {
	if requested != "" {
		if !strings.HasSuffix(requested, ".slice") || strings.Contains(requested, "/") {
			return "", false, fmt.Errorf("cgroup parent %q: the systemd driver wants a slice name such as kubepods-pod1234.slice", requested)
		}
		return requested, false, nil
	}
	// Nested slices are spelled by dashes: nodekit-pod<id>.slice lives in nodekit.slice.
	return strings.TrimSuffix(d.parent, ".slice") + "-pod" + id[:12] + ".slice", true, nil
}

func (d systemdCgroups) containerPath(parent, id string) string {
	return parent + ":nodekit:" + id
}

// removePod is a no-op: systemd removes a transient slice when its last unit goes.
func (systemdCgroups) removePod(string) error { return nil }

func (systemdCgroups) kind() runtime.CgroupDriver { return runtime.CgroupDriver_SYSTEMD }

// ownOOMScoreAdj returns the shim's own oom_score_adj: without CAP_SYS_RESOURCE a
// container cannot be given a lower one, so lower requests are raised to it (as
// containerd's restrict_oom_score_adj does).
func ownOOMScoreAdj() int {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return -1000
	}
	var v int
	if _, err := fmt.Sscan(strings.TrimSpace(string(data)), &v); err != nil {
		return -1000
	}
	return v
}
