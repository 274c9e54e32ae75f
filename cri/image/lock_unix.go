//go:build unix

package image

import (
	"os"

	"golang.org/x/sys/unix"
)

type lockMode int

const (
	lockNone lockMode = iota
	lockShared
	lockExclusive
)

// flock sets the flock(2) lock of f. Locks belong to the open file description, so two
// Stores (or a Store and a lease check) conflict even inside one process.
func flock(f *os.File, m lockMode) error {
	how := map[lockMode]int{lockNone: unix.LOCK_UN, lockShared: unix.LOCK_SH, lockExclusive: unix.LOCK_EX}[m]
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// tryLock takes an exclusive lock without waiting; false means someone holds it.
func tryLock(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		return false, nil
	}
	return err == nil, err
}
