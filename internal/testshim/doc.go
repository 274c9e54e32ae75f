// Package testshim runs nodekit's CRI shim (package cri) in the test's process,
// served on a unix socket and reached through k8s.io/cri-client as the agent
// and nodekit-kubelet reach it, with real runc and nodekit-monitor from
// `make build` and sample images from `make images` imported.
//
// Without root, or without the binaries or images, the test skips saying what
// is missing (a failure under NODEKIT_REQUIRE_INTEGRATION=1, see
// internal/testenv). The shim stops at the test's cleanup.
package testshim
