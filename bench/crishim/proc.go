package main

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
)

// procsWhere returns the processes of all that keep selects.
func procsWhere(all []procfs.Proc, keep func(procfs.Proc) bool) []procfs.Proc {
	return slices.DeleteFunc(slices.Clone(all), func(p procfs.Proc) bool { return !keep(p) })
}

// isDaemonOf reports whether args is a nodekit-cri or containerd whose command line
// names a path under dir (--listen, --config...).
func isDaemonOf(args []string, dir string) bool {
	if len(args) < 2 {
		return false
	}
	switch filepath.Base(args[0]) {
	case "nodekit-cri", "containerd":
	default:
		return false
	}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for _, a := range args[1:] {
		if _, v, ok := strings.Cut(a, "="); ok {
			a = v
		}
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}
