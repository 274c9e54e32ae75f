//go:build !linux

package stats

import (
	"errors"
	"io/fs"
	"path/filepath"
)

var errNoStatfs = errors.New("filesystem statistics are only read on Linux")

func statFs(string) (*fsInfo, error) { return nil, errNoStatfs }

// dirUsage sums the sizes of the files under dir, dir included, and counts them.
func dirUsage(dir string) (bytes, inodes uint64, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil
		}
		if info, err := d.Info(); err == nil {
			bytes += uint64(info.Size())
			inodes++
		}
		return nil
	})
	return bytes, inodes, err
}
