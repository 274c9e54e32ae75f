//go:build !linux

package agent

func sameDevice(string, string) bool { return true }

func diskUsage(string) (bytes, inodes uint64, ok bool) { return 0, 0, false }

func fsFigures(string) (capacity, available, inodes, inodesFree uint64, ok bool) {
	return 0, 0, 0, 0, false
}
