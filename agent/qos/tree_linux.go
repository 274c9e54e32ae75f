package qos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1Tree is cgroup v1: one hierarchy per controller.
type v1Tree struct {
	hierarchy cgroup1.Hierarchy
	// roots are the mount points of every hierarchy, where cgroups are removed
	// (runc creates a container's cgroup in each, the pod's parents with it,
	// including the empty v2 "unified" one of a hybrid host).
	roots []string
	// list is the hierarchy children are listed from.
	list string
}

// newV1Tree uses the hierarchies mounted under mount (the host's when mount is
// /sys/fs/cgroup), or only the given controllers' for a tree of one's own.
func newV1Tree(mount string) (*v1Tree, error) {
	entries, err := os.ReadDir(mount)
	if err != nil {
		return nil, fmt.Errorf("cgroup v1 hierarchies in %s: %w", mount, err)
	}
	t := &v1Tree{list: filepath.Join(mount, "cpu")}
	for _, e := range entries {
		if e.IsDir() {
			t.roots = append(t.roots, filepath.Join(mount, e.Name()))
		}
	}
	t.hierarchy = func() ([]cgroup1.Subsystem, error) {
		subs := []cgroup1.Subsystem{cgroup1.NewCpu(mount), cgroup1.NewCpuacct(mount), cgroup1.NewMemory(mount), cgroup1.NewPids(mount)}
		if _, err := os.Stat(filepath.Join(mount, "cpuset")); err == nil {
			subs = append(subs, cgroup1.NewCpuset(mount))
		}
		return subs, nil
	}
	return t, nil
}

func (t *v1Tree) version() int { return 1 }

func (t *v1Tree) ensure(path string, res Resources) error {
	spec := &specs.LinuxResources{}
	if res.CPUShares != nil || res.CPUQuota != nil || res.CPUPeriod != nil {
		spec.CPU = &specs.LinuxCPU{Shares: res.CPUShares, Quota: res.CPUQuota, Period: res.CPUPeriod}
	}
	if res.Memory != nil {
		limit := *res.Memory
		if limit == 0 {
			limit = -1
		}
		spec.Memory = &specs.LinuxMemory{Limit: &limit}
	}
	if res.PidsLimit != nil {
		spec.Pids = &specs.LinuxPids{Limit: res.PidsLimit}
	}
	if _, err := cgroup1.New(cgroup1.StaticPath(path), spec, cgroup1.WithHierarchy(t.hierarchy)); err != nil {
		return fmt.Errorf("cgroup %s: %w", path, err)
	}
	return nil
}

func (t *v1Tree) remove(path string) error {
	var errs []error
	for _, root := range t.roots {
		if err := removeTree(filepath.Join(root, path)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t *v1Tree) children(path string) ([]string, error) {
	return childDirs(filepath.Join(t.list, path))
}

// v2Tree is the unified hierarchy.
type v2Tree struct {
	mount string
	fake  bool // a plain directory tree, not cgroupfs
}

func (t *v2Tree) version() int { return 2 }

func (t *v2Tree) ensure(path string, res Resources) error {
	r := &cgroup2.Resources{}
	if res.CPUShares != nil || res.CPUQuota != nil {
		r.CPU = &cgroup2.CPU{}
		if res.CPUShares != nil {
			w := SharesToWeight(*res.CPUShares)
			r.CPU.Weight = &w
		}
		if res.CPUQuota != nil {
			r.CPU.Max = cgroup2.NewCPUMax(res.CPUQuota, res.CPUPeriod)
		}
	}
	if res.Memory != nil {
		limit := *res.Memory
		if limit == 0 {
			limit = -1
		}
		r.Memory = &cgroup2.Memory{Max: &limit}
	}
	if res.PidsLimit != nil {
		r.Pids = &cgroup2.Pids{Max: *res.PidsLimit}
	}
	if t.fake {
		// A plain directory tree (a test's) lacks the control file the kernel puts in
		// every cgroup, which the controllers are enabled through.
		if err := fakeControlFiles(t.mount, path); err != nil {
			return err
		}
	}
	// Each level must pass the controllers down to the next; the manager does that
	// for the parents it creates (cgroup.subtree_control).
	if _, err := cgroup2.NewManager(t.mount, path, r); err != nil {
		return fmt.Errorf("cgroup %s: %w", path, err)
	}
	return nil
}

func (t *v2Tree) remove(path string) error { return removeTree(filepath.Join(t.mount, path)) }

func (t *v2Tree) children(path string) ([]string, error) {
	return childDirs(filepath.Join(t.mount, path))
}

// newTree picks the host's cgroup version under mount (/sys/fs/cgroup).
func newTree(mount string, version int) (tree, error) {
	if version == 0 {
		if mount == "/sys/fs/cgroup" && cgroups.Mode() == cgroups.Unified {
			version = 2
		} else if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err == nil {
			version = 2
		} else {
			version = 1
		}
	}
	if version == 2 {
		return &v2Tree{mount: mount, fake: isFakeCgroup(mount)}, nil
	}
	return newV1Tree(mount)
}

// removeTree removes dir and the cgroup directories below it, deepest first. A
// cgroup directory holds only control files, which rmdir ignores; a cgroup with a
// process in it cannot be removed (EBUSY).
func removeTree(dir string) error {
	subs, err := childDirs(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range subs {
		if err := removeTree(filepath.Join(dir, s)); err != nil {
			return err
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		if isFakeCgroup(dir) {
			return os.RemoveAll(dir)
		}
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	return nil
}

// isFakeCgroup reports whether dir is a plain directory (a test's cgroup tree), in
// which control files are ordinary files that rmdir does not ignore.
func isFakeCgroup(dir string) bool {
	var st fsStat
	return statfs(dir, &st) == nil && !st.cgroup
}

func childDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

type fsStat struct{ cgroup bool }

// statfs tells whether path is on a cgroup (v1 or v2) filesystem.
func statfs(path string, st *fsStat) error {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return err
	}
	st.cgroup = s.Type == unix.CGROUP_SUPER_MAGIC || s.Type == unix.CGROUP2_SUPER_MAGIC
	return nil
}

// fakeControlFiles creates cgroup.subtree_control in mount and every directory of
// path, as cgroupfs would.
func fakeControlFiles(mount, path string) error {
	dir := mount
	for _, c := range append([]string{""}, strings.Split(strings.Trim(path, "/"), "/")...) {
		dir = filepath.Join(dir, c)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(dir, "cgroup.subtree_control"), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}
