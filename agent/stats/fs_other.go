//go:build !linux

package stats

import "errors"

var errNoStatfs = errors.New("filesystem statistics are only read on Linux")

func statFs(string) (*fsInfo, error) { return nil, errNoStatfs }
