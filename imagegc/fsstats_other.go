//go:build !linux

package imagegc

import "errors"

func statfs(string) (capacity, available uint64, err error) {
	return 0, 0, errors.New("filesystem statistics are only read on Linux; set Options.FsStats")
}
