// Package testenv decides whether a test that needs the real machine (root, runc,
// overlayfs, cgroups, built binaries) can run, and says clearly why not.
//
// Without root, such tests skip with a message naming what is missing. Under
// `make test` the Makefile sets NODEKIT_REQUIRE_INTEGRATION=1, and a missing
// prerequisite then fails the test instead, so nothing skips silently in CI.
//
// TempDir gives such tests a directory with a path short enough for unix
// sockets, and LogBuffer keeps the logs of what they run in the background for
// a failed test to print. The test's CNI network, its in-process shim, a
// busybox root filesystem and the checks of what a test left on the node are
// in the sibling packages testnet, testshim, testrootfs and leakcheck.
package testenv
