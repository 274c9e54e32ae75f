//go:build !linux

package agent

func fsCapacity(string) int64 { return 0 }

func sameDevice(string, string) bool { return true }

func diskUsage(string) (bytes, inodes uint64, ok bool) { return 0, 0, false }

func fsAvailable(string) uint64 { return 0 }
