package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// The streaming server serves the sessions whose URLs the Exec, Attach and
// PortForward RPCs hand out (the kubelet or crictl connect to them with SPDY or
// WebSocket upgrades), on Options.StreamAddress: loopback by default. The
// protocol side is k8s.io/cri-streaming; the shim supplies the runtime side
// (streamRuntime): exec through runc (container_exec.go), attach through the
// container's monitor (container_attach.go), port-forward inside the pod's network
// namespace (sandbox_portforward.go).
//
// The library passes a session the request's context, which net/http does not
// cancel when a hijacked connection's client goes away. The listener therefore
// tracks its connections and cancels a connection's context when the client's
// side ends (a read sees EOF or a reset) or the connection is closed: an exec'd
// process is killed and an attach ends when their client is gone.

// defaultStreamAddress is where the streaming server listens without
// Options.StreamAddress: loopback, a free port.
const defaultStreamAddress = "127.0.0.1:0"

// streamShutdownWait bounds how long Close waits for sessions to end.
const streamShutdownWait = 10 * time.Second

// streamServer is the running streaming server.
type streamServer struct {
	lib   streaming.Server
	http  *http.Server
	conns *trackingListener
	addr  string

	mu       sync.Mutex
	closed   bool
	sessions sync.WaitGroup
	podConns map[net.Conn]struct{} // port-forward connections into pods
}

// initStreaming starts the streaming server for exec, attach and port-forward.
func (s *Server) initStreaming() error {
	addr := s.opts.StreamAddress
	if addr == "" {
		addr = defaultStreamAddress
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("streaming server: %w", err)
	}
	tl := &trackingListener{Listener: l, conns: map[*trackedConn]struct{}{}}
	cfg := streaming.DefaultConfig
	cfg.Addr = l.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: "http", Host: cfg.Addr}
	lib, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		l.Close()
		return fmt.Errorf("streaming server: %w", err)
	}
	st := &streamServer{
		lib:   lib,
		conns: tl,
		addr:  cfg.Addr,
		http: &http.Server{
			Handler:           lib,
			ConnContext:       tl.connContext,
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		},
		podConns: map[net.Conn]struct{}{},
	}
	s.stream = st
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if err := st.http.Serve(tl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("streaming server stopped", "err", err)
		}
	}()
	s.log.Info("streaming server listening", "address", cfg.Addr)
	return nil
}

// closeStreaming stops the streaming server: it stops accepting, ends every
// session (exec'd processes are killed, attaches detach, port-forwards close) and
// waits a while for them to finish.
func (s *Server) closeStreaming() {
	st := s.stream
	if st == nil {
		return
	}
	st.mu.Lock()
	st.closed = true
	for c := range st.podConns {
		c.Close()
	}
	st.mu.Unlock()
	st.http.Close()     // the listener and connections not hijacked
	st.conns.closeAll() // the sessions' connections: their contexts end
	done := make(chan struct{})
	go func() {
		st.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(streamShutdownWait):
		s.log.Warn("streaming sessions still running at shutdown")
	}
}

// begin registers a session; it fails once the server is closing.
func (st *streamServer) begin() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return errors.New("the streaming server is shutting down")
	}
	st.sessions.Add(1)
	return nil
}

func (st *streamServer) end() { st.sessions.Done() }

// trackPodConn registers a connection into a pod, closed at shutdown; it fails
// (closing c) once the server is closing.
func (st *streamServer) trackPodConn(c net.Conn) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		c.Close()
		return errors.New("the streaming server is shutting down")
	}
	st.podConns[c] = struct{}{}
	return nil
}

func (st *streamServer) untrackPodConn(c net.Conn) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.podConns, c)
}

// streamRuntime is the runtime side of the streaming library.
type streamRuntime struct{ s *Server }

var _ streaming.Runtime = streamRuntime{}

func (r streamRuntime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	if err := r.s.stream.begin(); err != nil {
		return err
	}
	defer r.s.stream.end()
	return r.s.execSession(ctx, containerID, cmd, in, out, errOut, tty, resize)
}

func (r streamRuntime) Attach(ctx context.Context, containerID string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	if err := r.s.stream.begin(); err != nil {
		return err
	}
	defer r.s.stream.end()
	return r.s.attachSession(ctx, containerID, in, out, errOut, resize)
}

func (r streamRuntime) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	if err := r.s.stream.begin(); err != nil {
		return err
	}
	defer r.s.stream.end()
	return r.s.portForwardSession(ctx, podSandboxID, port, stream)
}

// exitError is how an exec'd process's non-zero exit code reaches the client: the
// streaming library recognizes it (k8s.io/utils/exec.ExitError) and reports the
// code.
type exitError struct{ code int }

func (e exitError) Error() string   { return "command terminated with exit code " + strconv.Itoa(e.code) }
func (e exitError) String() string  { return e.Error() }
func (e exitError) Exited() bool    { return true }
func (e exitError) ExitStatus() int { return e.code }

// trackingListener hands out connections whose context (see connContext) ends
// when their client goes away, and closes them all at shutdown.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	tc := &trackedConn{Conn: c, ctx: ctx, cancel: cancel, owner: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		cancel()
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// connContext is the http.Server's ConnContext: the requests of connection c get
// a context that ends when c's client goes away.
func (l *trackingListener) connContext(ctx context.Context, c net.Conn) context.Context {
	tc, ok := c.(*trackedConn)
	if !ok {
		return ctx
	}
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(tc.ctx, cancel)
	return ctx
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (l *trackingListener) forget(c *trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
}

// trackedConn is a connection of the streaming server.
type trackedConn struct {
	net.Conn
	ctx    context.Context // ends when the client is gone
	cancel context.CancelFunc
	once   sync.Once
	owner  *trackingListener
}

// Read notices the client going away: end of file or a reset. Timeouts are not
// that: net/http interrupts its own background reads with a past deadline.
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.gone()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.gone()
	return c.Conn.Close()
}

func (c *trackedConn) gone() {
	c.once.Do(func() {
		c.cancel()
		c.owner.forget(c)
	})
}
