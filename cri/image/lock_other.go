//go:build !unix

package image

import (
	"errors"
	"os"
)

type lockMode int

const (
	lockNone lockMode = iota
	lockShared
	lockExclusive
)

var errNoFlock = errors.New("image store: file locking needs a unix system")

func flock(f *os.File, m lockMode) error { return errNoFlock }

func tryLock(f *os.File) (bool, error) { return false, errNoFlock }
