// Package cgroupmount finds where the cgroup hierarchies are mounted (cgroup
// v1 controllers and the v2 unified hierarchy), for code that creates or
// removes cgroup directories in every hierarchy: the CRI shim's cgroupfs
// driver and the pod runtime's pod cgroups.
package cgroupmount
