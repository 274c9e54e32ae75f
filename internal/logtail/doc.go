// Package logtail reads the end of a daemon's log file for error messages:
// the test harnesses' containerd and the benchmarks' daemons quote the last
// lines of their logs when a process fails to start or stop.
package logtail
