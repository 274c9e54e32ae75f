package cri

import (
	"fmt"
	"os"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// netStats reads the interface counters of the network namespace pinned at
// nsPath, where no process may run: a locked OS thread joins the namespace,
// reads its own /proc/thread-self/net/dev and rejoins its original namespace.
// If that fails, the thread stays locked and the Go runtime retires it with the
// goroutine, so no other goroutine ever runs in the pod's namespace.
func netStats(nsPath string) ([]ifaceStats, error) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		data, restored, err := readNetDevIn(nsPath)
		if restored {
			goruntime.UnlockOSThread()
		}
		done <- result{data, err}
	}()
	r := <-done
	if r.err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", nsPath, r.err)
	}
	return parseNetDev(r.data)
}

// readNetDevIn runs on a locked thread; restored reports whether the thread is
// back in its own network namespace.
func readNetDevIn(nsPath string) (data []byte, restored bool, err error) {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, err
	}
	defer unix.Close(orig)
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, err
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("setns: %w", err)
	}
	data, err = os.ReadFile("/proc/thread-self/net/dev")
	restored = unix.Setns(orig, unix.CLONE_NEWNET) == nil
	return data, restored, err
}
