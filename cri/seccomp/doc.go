// Package seccomp builds the seccomp filters of containers: the runtime's
// default profile (RuntimeDefault) and profiles read from files (Localhost).
//
// A Profile is in the format Docker and moby use (defaultAction, archMap,
// syscalls with names, action, args, and includes/excludes conditions on the
// container's architecture, capabilities and kernel). The runtime-spec's
// LinuxSeccomp JSON is a subset of that format, so files in either form load.
// Resolve turns a Profile into the runtime-spec's LinuxSeccomp for one
// container: it keeps the rules whose conditions hold for that container's
// Target and the architectures of the node.
//
// DefaultProfile is nodekit's RuntimeDefault: an allowlist that denies
// everything else with EPERM, equivalent to the default profile of moby and
// containerd. It allows more to containers holding more capabilities (mount,
// unshare, setns... with CAP_SYS_ADMIN), filters clone flags so that a
// container without CAP_SYS_ADMIN cannot create namespaces, answers clone3
// with ENOSYS (so C libraries fall back to clone, which can be filtered), and
// leaves out io_uring, as moby and containerd 2 do.
package seccomp
