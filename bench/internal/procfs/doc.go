// Package procfs reads what the benchmarks measure and look for in /proc: the
// processes of the machine and their command lines, a process's CPU times,
// thread count and context switches (/proc/PID/stat, task/*/status), its
// memory (Rss, Pss and anonymous memory from /proc/PID/smaps_rollup) and what
// its threads are blocked in (task/*/syscall).
//
// Processes may exit while they are read: List skips those, the per-process
// readers return an error naming the file. Only Linux's /proc layout is
// understood.
package procfs
