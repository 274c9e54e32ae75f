// Package podnet sets up the pod network of a benchmark run: a subnet of
// 10.64.0.0/10 that no interface of the machine is in, and the CNI network
// configuration of a bridge of the run's own with host-local addresses from
// it (and the loopback plugin).
package podnet
