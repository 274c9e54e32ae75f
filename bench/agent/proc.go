package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/internal/cmdline"
)

// isEmbeddedKubelet reports whether args is a nodekit-kubelet running the agent
// with its embedded runtime (not `get pods`, not `import`, no
// --container-runtime-endpoint).
func isEmbeddedKubelet(args []string) bool {
	if len(args) == 0 || filepath.Base(args[0]) != "nodekit-kubelet" {
		return false
	}
	if len(args) > 1 && (args[1] == "get" || args[1] == "import") {
		return false
	}
	return cmdline.FlagValue(args, "container-runtime-endpoint") == ""
}

// threadSyscalls summarises what the threads of pid are blocked in: "futex 8,
// waitid 100" (most frequent first; "running" for threads not in a system call).
func threadSyscalls(pid int) string {
	counts, err := procfs.ThreadSyscalls(pid)
	if err != nil {
		return "?"
	}
	return formatCounts(counts)
}

// formatCounts renders counts as "a 3, b 1", largest first, then by name.
func formatCounts(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	return strings.Join(parts, ", ")
}
