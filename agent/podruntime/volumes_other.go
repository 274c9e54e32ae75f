//go:build !linux

package podruntime

import "errors"

func mountTmpfs(string, int64) error {
	return errors.New("memory-backed emptyDir volumes need Linux")
}

func unmountUnder(string) error { return nil }

func removeCgroup(string) error { return nil }
