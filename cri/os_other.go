//go:build !linux

package cri

import (
	"errors"
	"log/slog"

	"golang.org/x/sys/unix"
)

// The CRI shim runs containers on Linux only; elsewhere the package builds so that
// its types can be used, and New fails.

var errLinuxOnly = errors.New("the nodekit CRI shim needs Linux")

type exitWatcher struct{}

func newExitWatcher(string, func(string), *slog.Logger) (*exitWatcher, error) {
	return nil, errLinuxOnly
}
func (*exitWatcher) run()   {}
func (*exitWatcher) close() {}

const mountNoSuidDevExec = 0

func mountTmpfs(string, int64, uintptr) error             { return errLinuxOnly }
func mountOverlay([]string, string, string, string) error { return errLinuxOnly }
func mountOverlayIDMapped([]string, string, string, string, string, int, int) error {
	return errLinuxOnly
}
func unmount(string) error { return nil }

func mountImageLayers([]string, string, string) error { return errLinuxOnly }
func isMountPoint(string) (bool, error)               { return false, errLinuxOnly }

func procStartTime(int) (uint64, error)                    { return 0, errLinuxOnly }
func alive(int, uint64) bool                               { return false }
func signalProcess(int, uint64, unix.Signal) (bool, error) { return false, errLinuxOnly }
func waitProcessGone(int, uint64, int) bool                { return true }
func reapWhenDone(int, func()) error                       { return errLinuxOnly }
func findProcess(string, string) (int, uint64, bool)       { return 0, 0, false }
