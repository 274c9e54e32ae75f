//go:build !linux

package volumes

func bindSubPath(root, sub, target string, create bool) error { return errNotLinux }
