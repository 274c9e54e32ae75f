// Package cgstats reads the resource usage of cgroups — CPU time, memory, process
// counts and, on cgroup v2, pressure — through github.com/containerd/cgroups/v3,
// and reports it in the units the CRI uses (nanoseconds, bytes).
//
// One Reader type exists per cgroup version (v1: every controller in its own
// hierarchy; v2: the unified tree). New picks the version once, from the file
// system at the cgroup root; callers never branch on it. Both work on any root
// directory, so tests run them on fake trees.
//
// Path turns a runtime-spec linux.cgroupsPath, in the cgroupfs ("/parent/id") or
// the systemd ("slice:prefix:name") notation, into the cgroup's path below the
// root of a hierarchy. NanoCores turns two samples into a CPU rate.
package cgstats
