//go:build !linux

package cni

// isNetNS: network namespaces are Linux only.
func isNetNS(path string) bool { return false }
