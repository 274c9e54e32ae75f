package leftover

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nodekit-dev/nodekit/internal/cgroupmount"
)

// RemoveCgroup removes the cgroup tree at cgroup (a path like /nkbench-<id>,
// relative to each hierarchy's root) in every hierarchy, deepest first, trying
// each directory until deadline (see RemoveCgroupTree). It returns how many
// directories it removed and the errors, one per hierarchy at most.
func RemoveCgroup(cgroup string, deadline time.Time) (int, []error) {
	mps, err := cgroupmount.Points()
	if err != nil {
		return 0, []error{err}
	}
	var removed int
	var errs []error
	for _, mp := range mps {
		n, err := RemoveCgroupTree(filepath.Join(mp, cgroup), deadline)
		removed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errs
}

// RemoveCgroupTree removes the directory dir of a cgroup hierarchy and every
// cgroup below it, deepest first, and returns how many it removed. A cgroup
// whose last process is still exiting is busy for a moment: each is retried
// until deadline (a deadline in the past: one attempt each). A dir that does
// not exist is not an error.
func RemoveCgroupTree(dir string, deadline time.Time) (int, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	var dirs []string
	// The callback skips what cannot be read and never fails the walk.
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var removed int
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		for {
			err := os.Remove(dirs[i])
			if err == nil {
				removed++
				break
			}
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return removed, errors.Join(errs...)
}
