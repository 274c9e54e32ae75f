// Package daemon starts and stops the long-running processes a benchmark
// drives (nodekit-kubelet, nodekit-cri, containerd, a test image server): each
// with its output in a log file, in a process group of its own so that a
// terminal's ^C reaches only the benchmark, which stops them itself by PID —
// SIGTERM, then SIGKILL after a grace period — once it has cleaned up through
// them. StopPID does the same for a process of an earlier run that the
// benchmark did not start.
package daemon
