//go:build !linux

package cri

func netStats(string) ([]ifaceStats, error) { return nil, errLinuxOnly }
