//go:build !linux

package server

// newChangeWaiter polls where inotify is not available.
func newChangeWaiter(string) changeWaiter { return pollWaiter{} }
