// Package testrootfs builds the root filesystems of the containers that
// integration tests run with runc directly, without an image: the host's static
// busybox (Debian's busybox-static, `make setup`) and its applets.
package testrootfs
