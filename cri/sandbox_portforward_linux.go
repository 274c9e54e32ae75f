package cri

import (
	"context"
	"fmt"
	"net"
	goruntime "runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// dialTimeout bounds connecting to a port in a pod.
const dialTimeout = 10 * time.Second

// dialPod connects to port on the loopback interface of the network namespace
// pinned at netns ("" for the host's): 127.0.0.1, then ::1. The socket is created
// on an OS thread that joined the namespace (a socket stays in the namespace it
// was created in); the thread rejoins its own namespace before it is released,
// and if that fails it is never released, so the Go runtime retires it.
func dialPod(ctx context.Context, netns string, port int32) (net.Conn, error) {
	if netns == "" {
		return dialLoopback(ctx, port)
	}
	target, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open network namespace: %w", err)
	}
	defer unix.Close(target)
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			goruntime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("open own network namespace: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("join network namespace %s: %w", netns, err)}
			return
		}
		conn, err := dialLoopback(ctx, port)
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			goruntime.UnlockOSThread()
		}
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

// dialLoopback connects to port on 127.0.0.1, else on ::1, from the calling
// goroutine (which stays on its thread: the sockets are made in its network
// namespace).
func dialLoopback(ctx context.Context, port int32) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	p := strconv.Itoa(int(port))
	conn, err4 := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", p))
	if err4 == nil {
		return conn, nil
	}
	conn, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", p))
	if err6 == nil {
		return conn, nil
	}
	return nil, fmt.Errorf("connect to port %d: %w", port, err4)
}
