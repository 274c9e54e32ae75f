// Package spec turns a CRI CreateContainer request into an OCI runtime spec
// (config.json) for runc.
//
// Generate is a pure function of its Input: besides building the spec it only
// reads the container's own /etc/passwd and /etc/group (resolved inside the
// rootfs with chroot semantics through an os.Root, so a symlink in the image
// can never make it read a host file), stats the host device nodes the
// request names, reads a Localhost seccomp profile the request names and
// checks that a Localhost AppArmor profile is loaded. Requests that are
// accepted but mean nothing on this node (SELinux options without SELinux)
// are reported through Input.Note; Generate never logs.
//
// Security profiles: seccomp RuntimeDefault is package seccomp's built-in
// profile, Localhost a profile file (moby or runtime-spec format), Unconfined
// or nothing asked for no filter; privileged containers get no RuntimeDefault
// filter. AppArmor Localhost needs AppArmor on the node. The pod's PID
// namespace is the caller's (Namespaces.PID). Facts about the node (cgroup version, swap accounting,
// hugetlb, the capabilities and RLIMIT_NOFILE the runtime holds) come in
// through Input.Host; when it is nil, Generate uses DetectHost's answer for
// this process, read once.
//
// The behaviour follows containerd's CRI plugin (internal/cri/server and
// internal/cri/opts, pkg/oci), with validation in the style of CRI-O: a bad
// request comes back as a *FieldError naming the CRI field (for example
// "linux.security_context.run_as_username"), which the server maps to
// codes.InvalidArgument.
package spec
