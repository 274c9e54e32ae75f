// Package rundir names and creates a benchmark run's workspace: the
// directory /tmp/<prefix><id> holding everything the run writes (files,
// sockets, the runtimes' roots, mounts) and the cgroup /<prefix><id> holding
// every cgroup it creates, the same id for both. bench/agent (nkagent-),
// bench/cluster (nkcl-) and bench/crishim (nkbench-) create theirs with New,
// find a killed run's with Existing (their -cleanup flag) and remove the
// directory last with Remove.
package rundir
