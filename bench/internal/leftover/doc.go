// Package leftover finds and removes what a benchmark run leaves on the node
// when its processes are stopped or killed: nodekit-monitor processes (found
// by the state directory their config is in, killed by PID), containers in a
// runc root, mounts under a directory (overlay root filesystems, shm tmpfs,
// pinned namespaces: deepest first), and cgroup trees in every cgroup
// hierarchy (v1 and v2).
//
// Each function does one kind of removal and reports what it removed and what
// it could not, for the benchmark to print; none stops at the first error.
package leftover
