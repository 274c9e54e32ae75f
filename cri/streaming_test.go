package cri

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	utilexec "k8s.io/utils/exec"
)

// The streaming library reports an exec's exit code only for errors that are
// k8s.io/utils/exec.ExitError.
func TestExitErrorIsWhatTheStreamingLibraryExpects(t *testing.T) {
	var err error = exitError{code: 3}
	ee, ok := err.(utilexec.ExitError)
	if !ok || !ee.Exited() || ee.ExitStatus() != 3 || ee.Error() != "command terminated with exit code 3" {
		t.Fatalf("exitError{3} as utilexec.ExitError: %v %v", ok, err)
	}
}

// A session's context ends when its client goes away, not when net/http interrupts
// a read with a deadline, and at shutdown.
func TestTrackedConnContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &trackingListener{Listener: l, conns: map[*trackedConn]struct{}{}}
	defer tl.Close()

	accept := func() (net.Conn, net.Conn, context.Context) {
		t.Helper()
		client, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		server, err := tl.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return client, server, tl.connContext(context.Background(), server)
	}
	ended := func(ctx context.Context) bool {
		select {
		case <-ctx.Done():
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}

	client, server, ctx := accept()
	server.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := server.Read(make([]byte, 1)); err == nil {
		t.Fatal("read past its deadline succeeded")
	}
	if ctx.Err() != nil {
		t.Fatal("a read deadline ended the session's context")
	}
	server.SetReadDeadline(time.Time{})
	client.Close()
	if _, err := server.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the client closed: %v", err)
	}
	if !ended(ctx) {
		t.Fatal("the client went away but the session's context goes on")
	}

	_, _, ctx = accept()
	tl.closeAll()
	if !ended(ctx) {
		t.Fatal("closeAll left a session's context running")
	}
	if len(tl.conns) != 0 {
		t.Fatalf("%d connections still tracked", len(tl.conns))
	}
}

func TestStreamServerRefusesSessionsOnceClosed(t *testing.T) {
	st := &streamServer{podConns: map[net.Conn]struct{}{}}
	if err := st.begin(); err != nil {
		t.Fatal(err)
	}
	st.end()
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	if err := st.begin(); err == nil {
		t.Fatal("a session began on a closed server")
	}
	a, b := net.Pipe()
	defer b.Close()
	if err := st.trackPodConn(a); err == nil {
		t.Fatal("a pod connection was tracked on a closed server")
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Fatal("the refused pod connection is still open")
	}
}
