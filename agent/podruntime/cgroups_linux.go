package podruntime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nodekit-dev/nodekit/internal/cgroupmount"
)

// removeCgroup removes a pod's cgroup directory (and empty child cgroups) from
// every cgroupfs hierarchy. Missing directories are fine.
func removeCgroup(parent string) error {
	mounts, err := cgroupmount.Points()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := removeCgroupTree(filepath.Join(m, parent)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCgroupTree rmdirs a cgroup and its child cgroups, deepest first.
func removeCgroupTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	return nil
}
