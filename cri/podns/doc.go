// Package podns creates a pod's shared namespaces (network, IPC, UTS) without any
// process to hold them: each namespace is created on a throw-away OS thread and
// pinned by bind-mounting its nsfs file, the way `ip netns add` does. An idle pod
// therefore costs no process and no memory. Containers join the namespaces by path.
//
// Only the PID namespace cannot be pinned this way (a PID namespace dies with its
// init process); pods that share one need an infra process, which is not this
// package's business.
package podns
