// Package agent is nodekit's kubelet core: an Agent reads the pods it should run
// from its sources (today a static-pod manifest directory), runs one worker per
// pod that drives the pod through the container runtime (package podruntime, over
// the CRI), learns what happened from the pod lifecycle event generator (package
// pleg) and the probes (package probes), and reports pod statuses (package
// status) and the kubelet HTTP API (package server).
//
// The Agent talks to its runtime only through the CRI interfaces of
// k8s.io/cri-api, so it runs unchanged against nodekit's own shim, containerd or
// CRI-O.
package agent
