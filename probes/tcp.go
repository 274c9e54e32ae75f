package probes

import (
	"context"
	"net"
	"time"
)

// probeLingerSeconds is the SO_LINGER the kubelet sets on probe connections,
// so that closing them does not leave sockets in TIME_WAIT for long.
const probeLingerSeconds = 1

// dialProbe connects to addr within timeout.
func dialProbe(ctx context.Context, network, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(probeLingerSeconds)
	}
	return conn, nil
}

// tcpProbe succeeds when a TCP connection to addr opens within timeout.
func tcpProbe(ctx context.Context, addr string, timeout time.Duration) (outcome, string, error) {
	conn, err := dialProbe(ctx, "tcp", addr, timeout)
	if err != nil {
		// Errors are failures, so that timeouts count.
		return outcomeFailure, err.Error(), nil
	}
	// As the kubelet: a failed close does not fail the probe.
	_ = conn.Close()
	return outcomeSuccess, "", nil
}
