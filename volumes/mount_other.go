//go:build !linux

package volumes

import "errors"

var errNotLinux = errors.New("volumes: mounts need Linux")

func memoryDir(string, int64) (bool, error) { return false, errNotLinux }
func unmountUnder(string) error             { return nil }
func isMountPoint(string) (bool, error)     { return false, nil }
