// Package leakcheck finds what an integration test of the runtime left on the
// node, fails the test for it and removes it: mounts below the test's
// directories, nodekit-monitor processes of its shim, runc state, and cgroups
// below its cgroup parent in every hierarchy (cgroup v1 and v2).
//
// The mount table is read with github.com/moby/sys/mountinfo. The assertions
// report with t.Errorf, so every check of a test's cleanup runs even when an
// earlier one failed.
package leakcheck
