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
//
// A container's rootfs is an overlay of its image's layers (unpacked once by package
// image) under a writable layer of its own. A mount that names an image instead of a
// host path (an image volume, KEP-4639: Mount.image, optionally Mount.image_sub_path)
// gets that image's layers merged read-only under the container's state directory and
// bound read-only into the container, the sub path resolved inside the image
// (image_volume.go). The mount lives and goes with the container; an image mounted so
// cannot be removed while the container exists (RemoveImage fails with
// FailedPrecondition, as in CRI-O).
package cri
