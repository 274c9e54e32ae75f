// Package cmdline reads process command lines as /proc/PID/cmdline holds
// them, for the tests and benchmarks that find daemons and shims by their
// arguments: the processes with their argv (from the NUL-separated file), and
// the value of a Go-flag-style option in it.
package cmdline
