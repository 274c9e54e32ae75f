//go:build !linux

package stats

import "errors"

var errNotLinux = errors.New("node statistics are only read on Linux")

func newHostSource() (nodeSource, error) { return nil, errNotLinux }
