//go:build !linux

package podruntime

func removeCgroup(string) error { return nil }
