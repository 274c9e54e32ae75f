// Package cri is nodekit's CRI shim: a gRPC server implementing the Kubernetes
// Container Runtime Interface v1 (RuntimeService and ImageService) that runs pods with
// runc.
//
// Each CRI verb lives in its own file (sandbox_run.go, container_create.go,
// image_pull.go, ...), the way containerd lays out internal/cri/server, so a reader
// who knows the CRI finds any RPC at once.
//
// A pod sandbox is a set of pinned namespaces (package podns) with no process; each
// container is supervised by its own monitor process (package monitor) that outlives
// the shim. Everything the shim knows is kept on disk (records under the state
// directory, written atomically), so a restarted shim reconciles with the monitors'
// exit records and carries on without losing a container, an exit code or a log line.
package cri
