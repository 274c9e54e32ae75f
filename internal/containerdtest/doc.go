// Package containerdtest runs a private containerd — Debian's containerd 1.6
// with its built-in CRI plugin — for tests and benchmarks that compare nodekit
// with it or drive it through CRI, and removes everything such a containerd
// leaves on the node.
//
// A private containerd keeps its root, state, gRPC and ttrpc sockets, config
// and log under one directory of the caller's, runs the runc binary it is given
// (BinaryName) with its runc state under its state directory, takes its CNI
// networks from a configuration directory of the caller's (never the host's
// /etc/cni/net.d), uses nodekit.local/pause:latest as its sandbox image and
// clamps oom_score_adj to its own (restrict_oom_score_adj: a test process
// without CAP_SYS_RESOURCE cannot lower it).
//
// Whatever its config says, containerd 1.6 puts its shims' sockets in
// /run/containerd/s and libcni caches results in /var/lib/cni/results; its
// shims outlive it. Cleanup finds and removes those of one containerd: shims
// by PID (those whose -address is its socket), their sockets, CNI cache
// entries of its sandboxes, containers left in its runc root and mounts under
// its directories.
package containerdtest
