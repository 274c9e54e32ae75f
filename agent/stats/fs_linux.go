package stats

import (
	"sync"

	cadvisorfs "github.com/google/cadvisor/lib/fs"
	"github.com/google/cadvisor/lib/fs/vfs"
	"golang.org/x/sys/unix"

	// The filesystem plugins the kubelet registers.
	_ "github.com/google/cadvisor/lib/fs/btrfs/install"
	_ "github.com/google/cadvisor/lib/fs/nfs/install"
	_ "github.com/google/cadvisor/lib/fs/overlay/install"
	_ "github.com/google/cadvisor/lib/fs/tmpfs/install"
	_ "github.com/google/cadvisor/lib/fs/vfs/install"
	_ "github.com/google/cadvisor/lib/fs/zfs/install"
)

// hostFs is cAdvisor's view of the host's filesystems, shared by every Node
// and FromCRI.
var hostFs fsResolver

// fsResolver finds the filesystem of a path as the kubelet's cAdvisor does
// (GetDirFsInfo): the path's device among the partitions of the mount table,
// then that partition's figures from its filesystem plugin.
type fsResolver struct {
	mu    sync.Mutex
	info  cadvisorfs.FsInfo
	byDev map[uint64]fsDevice // a path's st_dev → its partition, "" when cAdvisor has none
}

type fsDevice struct{ device, mountpoint string }

// fsInfo returns cAdvisor's FsInfo, reading the mount table the first time.
func (r *fsResolver) fsInfo() (cadvisorfs.FsInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.info == nil {
		if err := r.reload(); err != nil {
			return nil, err
		}
	}
	return r.info, nil
}

func (r *fsResolver) reload() error {
	info, err := cadvisorfs.NewFsInfo(cadvisorfs.Context{})
	if err != nil {
		return err
	}
	r.info = info
	if r.byDev == nil {
		r.byDev = map[uint64]fsDevice{}
	}
	return nil
}

// resolve returns the partition holding path, whose st_dev is dev. A device
// not seen before re-reads the mount table first: it may be a new mount
// (devices seen before keep their partition, so paths on different devices do
// not re-read it in turn).
func (r *fsResolver) resolve(path string, dev uint64) (cadvisorfs.FsInfo, fsDevice, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.byDev[dev]; ok {
		return r.info, d, nil
	}
	if err := r.reload(); err != nil {
		return nil, fsDevice{}, err
	}
	var d fsDevice
	if di, err := r.info.GetDirFsDevice(path); err == nil {
		if mp, err := r.info.GetMountpointForDevice(di.Device); err == nil {
			d = fsDevice{device: di.Device, mountpoint: mp}
		}
	}
	r.byDev[dev] = d
	return r.info, d, nil
}

// statFs reads the capacity and inodes of the filesystem holding path through
// cAdvisor: the figures of its partition (statfs of the mount point, or the
// btrfs/zfs/nfs plugin's), or, for a filesystem cAdvisor has no partition for
// (a type without a plugin, such as 9p or virtiofs), cAdvisor's statfs of path.
func statFs(path string) (*fsInfo, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, err
	}
	info, d, err := hostFs.resolve(path, uint64(st.Dev)) // Dev is 32-bit on some platforms
	if err != nil {
		return nil, err
	}
	if d.device != "" {
		if fss, err := info.GetFsInfoForPath(map[string]struct{}{d.mountpoint: {}}); err == nil {
			for _, f := range fss {
				if f.Device == d.device {
					return &fsInfo{
						capacity:   f.Capacity,
						available:  f.Available,
						used:       f.Capacity - min(f.Free, f.Capacity),
						inodes:     f.Inodes,
						inodesFree: f.InodesFree,
					}, nil
				}
			}
		}
	}
	capacity, free, avail, inodes, inodesFree, err := vfs.GetVfsStats(path)
	if err != nil {
		return nil, err
	}
	return &fsInfo{capacity: capacity, available: avail, used: capacity - min(free, capacity), inodes: &inodes, inodesFree: &inodesFree}, nil
}
