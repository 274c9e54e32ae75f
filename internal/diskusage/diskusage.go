package diskusage

import (
	"io/fs"
	"path/filepath"
)

// Usage is what a directory tree uses.
type Usage struct {
	Bytes  uint64 // allocated space
	Inodes uint64
}

// Measure walks dir and sums what it uses. Entries that cannot be read (they
// vanished during the walk, or a subdirectory is unreadable) are skipped; the
// error is only about dir itself (fs.ErrNotExist when it is missing).
func Measure(dir string) (Usage, error) {
	return measure(dir, false)
}

// MeasureStrict is Measure failing on any entry it cannot read, for a tree
// nothing else changes while it is measured.
func MeasureStrict(dir string) (Usage, error) {
	return measure(dir, true)
}

func measure(dir string, strict bool) (Usage, error) {
	var u Usage
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if strict || p == dir {
				return err
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if strict {
				return err
			}
			return nil
		}
		bytes, ino, ok := allocated(info)
		if !ok {
			u.Bytes += uint64(info.Size())
			u.Inodes++
			return nil
		}
		if seen[ino] {
			return nil
		}
		seen[ino] = true
		u.Bytes += bytes
		u.Inodes++
		return nil
	})
	if err != nil {
		return Usage{}, err
	}
	return u, nil
}
