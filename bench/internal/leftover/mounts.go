package leftover

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// MountsUnder returns the mount points strictly under dir (not dir itself),
// deepest first; among equally deep ones the later-mounted first, so stacked
// mounts come off in order.
func MountsUnder(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("mounts under %s: %w", dir, err)
	}
	return mountsUnder(mounts, dir), nil
}

// mountsUnder orders the mounts of mountinfo that are strictly under dir
// (cleaned) for unmounting.
func mountsUnder(mounts []*mountinfo.Info, dir string) []string {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	type cand struct {
		point        string
		depth, order int
	}
	var c []cand
	for i, m := range mounts {
		if strings.HasPrefix(m.Mountpoint, prefix) {
			c = append(c, cand{m.Mountpoint, strings.Count(m.Mountpoint, "/"), i})
		}
	}
	sort.SliceStable(c, func(i, j int) bool {
		if c[i].depth != c[j].depth {
			return c[i].depth > c[j].depth
		}
		return c[i].order > c[j].order
	})
	out := make([]string, len(c))
	for i := range c {
		out[i] = c[i].point
	}
	return out
}

// Unmount unmounts everything under dirs, deepest first (lazily where a
// mount is busy), in up to 5 rounds for mounts that appear under the ones
// removed. It returns how many it unmounted and an error for each one it could
// not.
func Unmount(dirs ...string) (int, []error) {
	var n int
	var errs []error
	for range 5 {
		var points []string
		for _, d := range dirs {
			p, err := MountsUnder(d)
			if err != nil {
				return n, append(errs, err)
			}
			points = append(points, p...)
		}
		if len(points) == 0 {
			break
		}
		for _, p := range points {
			if err := unix.Unmount(p, 0); err != nil {
				if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
					errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
					continue
				}
			}
			n++
		}
	}
	return n, errs
}
