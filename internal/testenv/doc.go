// Package testenv decides whether a test that needs the real machine (root, runc,
// overlayfs, cgroups, built binaries) can run, and says clearly why not.
//
// Without root, such tests skip with a message naming what is missing. Under
// `make test` the Makefile sets NODEKIT_REQUIRE_INTEGRATION=1, and a missing
// prerequisite then fails the test instead, so nothing skips silently in CI.
package testenv
