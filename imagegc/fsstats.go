package imagegc

import (
	"context"
	"errors"
	"fmt"
)

// statfsImageFs is the default FsStats: the capacity and available bytes of
// the filesystem mounted where the runtime's ImageFsInfo says its images are.
type statfsImageFs struct{ images Images }

func (s statfsImageFs) FsStats(ctx context.Context) (capacity, available uint64, err error) {
	resp, err := s.images.ImageFsInfo(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("image filesystem info: %w", err)
	}
	fss := resp.GetImageFilesystems()
	if len(fss) == 0 {
		return 0, 0, errors.New("the runtime reported no image filesystem")
	}
	mnt := fss[0].GetFsId().GetMountpoint()
	if mnt == "" {
		return 0, 0, errors.New("the runtime reported no mountpoint for its image filesystem")
	}
	capacity, available, err = statfs(mnt)
	if err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", mnt, err)
	}
	return capacity, available, nil
}
