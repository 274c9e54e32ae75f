//go:build !linux

package agent

func fsCapacity(string) int64 { return 0 }
