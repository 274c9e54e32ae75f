package seccomp

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The ABI values spelt out in default.go are the kernel's.
func TestLinuxABIValues(t *testing.T) {
	const flags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP
	for name, c := range map[string][2]uint64{
		"EPERM":         {errnoEPERM, uint64(unix.EPERM)},
		"ENOSYS":        {errnoENOSYS, uint64(unix.ENOSYS)},
		"AF_VSOCK":      {afVSOCK, unix.AF_VSOCK},
		"CLONE_NEW*":    {namespaceCloneFlags, flags},
		"CLONE_NEW* v2": {namespaceCloneFlags, 0x7E020000},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %#x, the kernel's is %#x", name, c[0], c[1])
		}
	}
}
