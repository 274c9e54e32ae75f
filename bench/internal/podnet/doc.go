// Package podnet picks the pod network of a benchmark run: a subnet of
// 10.64.0.0/10 that no interface of the machine is in.
package podnet
