package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// streamRuntime is the runtime side of a real CRI streaming server
// (k8s.io/cri-streaming): exec echoes its command and stdin, attach writes a
// greeting then echoes, port-forward echoes with the port in front.
type streamRuntime struct {
	mu    sync.Mutex
	execs []string // "container: cmd"
	// block, when not nil, makes exec wait until it is closed or its
	// context ends.
	block chan struct{}
}

func (rt *streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, _ <-chan remotecommand.TerminalSize) error {
	rt.mu.Lock()
	rt.execs = append(rt.execs, id+": "+strings.Join(cmd, " "))
	block := rt.block
	rt.mu.Unlock()
	if block != nil {
		select {
		case <-ctx.Done():
		case <-block:
		}
		return nil
	}
	fmt.Fprintf(out, "ran %s tty=%v\n", strings.Join(cmd, " "), tty)
	if in != nil {
		if _, err := io.Copy(out, in); err != nil {
			return err
		}
	}
	if errw != nil {
		fmt.Fprintln(errw, "to stderr")
	}
	return nil
}

func (rt *streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, _ <-chan remotecommand.TerminalSize) error {
	fmt.Fprintf(out, "attached to %s\n", id)
	if in != nil {
		if _, err := io.Copy(out, in); err != nil {
			return err
		}
	}
	return nil
}

func (rt *streamRuntime) PortForward(ctx context.Context, sandbox string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	r := bufio.NewReader(stream)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			fmt.Fprintf(stream, "%s:%d %s", sandbox, port, line)
		}
		if err != nil {
			return nil
		}
	}
}

// streamingProvider serves pod default/web (container app) through lib.
type streamingProvider struct {
	*fakeProvider
	lib streaming.Server
}

func (p *streamingProvider) check(ns, pod string, uid types.UID, container string) error {
	if ns != "default" || pod != "web" || (uid != "" && uid != "uid-web") {
		return fmt.Errorf("pod %s/%s: %w", ns, pod, ErrNotFound)
	}
	if container != "" && container != "app" {
		return fmt.Errorf("container %q in pod %s/%s: %w", container, ns, pod, ErrNotFound)
	}
	return nil
}

func (p *streamingProvider) GetExec(_ context.Context, ns, pod string, uid types.UID, container string, cmd []string, o StreamOptions) (*url.URL, error) {
	if err := p.check(ns, pod, uid, container); err != nil {
		return nil, err
	}
	resp, err := p.lib.GetExec(&runtimeapi.ExecRequest{ContainerId: "ctr-app", Cmd: cmd, Tty: o.TTY, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
	if err != nil {
		return nil, err
	}
	return url.Parse(resp.Url)
}

func (p *streamingProvider) GetAttach(_ context.Context, ns, pod string, uid types.UID, container string, o StreamOptions) (*url.URL, error) {
	if err := p.check(ns, pod, uid, container); err != nil {
		return nil, err
	}
	resp, err := p.lib.GetAttach(&runtimeapi.AttachRequest{ContainerId: "ctr-app", Tty: o.TTY, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
	if err != nil {
		return nil, err
	}
	return url.Parse(resp.Url)
}

func (p *streamingProvider) GetPortForward(_ context.Context, ns, pod string, uid types.UID, ports []int32) (*url.URL, error) {
	if err := p.check(ns, pod, uid, ""); err != nil {
		return nil, err
	}
	resp, err := p.lib.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "sb-web", Port: ports})
	if err != nil {
		return nil, err
	}
	return url.Parse(resp.Url)
}

func (p *streamingProvider) RunInContainer(_ context.Context, ns, pod string, uid types.UID, container string, cmd []string) ([]byte, error) {
	if err := p.check(ns, pod, uid, container); err != nil {
		return nil, err
	}
	return []byte(strings.Join(cmd, "|")), nil
}

// streamingServer starts a CRI streaming server (plain HTTP, as the shim's)
// and a kubelet API server whose provider hands out its sessions; anonymous
// requests are allowed.
func streamingServer(t *testing.T) (*Server, Options, *streamRuntime) {
	t.Helper()
	rt := &streamRuntime{}
	var lib streaming.Server
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { lib.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	cfg := streaming.DefaultConfig
	cfg.Addr = ts.Listener.Addr().String()
	base, _ := url.Parse(ts.URL)
	cfg.BaseURL = base
	var err error
	if lib, err = streaming.NewServer(cfg, rt); err != nil {
		t.Fatal(err)
	}
	p := &streamingProvider{fakeProvider: &fakeProvider{pods: []*v1.Pod{testPod("default", "web", "app")}}, lib: lib}
	o := baseOptions(t, p)
	o.AnonymousAuth = true
	o.LocalSocket = filepath.Join(t.TempDir(), "k.sock")
	return start(t, o), o, rt
}

// spdyDial upgrades a request to the server to SPDY with protocol.
func spdyDial(t *testing.T, o Options, method, rawURL, protocol string) (httpstream.Connection, error) {
	t.Helper()
	pemData, err := os.ReadFile(filepath.Join(o.CertDir, "kubelet.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	rt, err := spdy.NewRoundTripper(&tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(httpstream.HeaderProtocolVersion, protocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	conn, err := rt.NewConnection(resp)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	return conn, nil
}

func stream(t *testing.T, conn httpstream.Connection, kv ...string) httpstream.Stream {
	t.Helper()
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	s, err := conn.CreateStream(h)
	if err != nil {
		t.Fatalf("create stream %v: %v", kv, err)
	}
	return s
}

// TestExecProxied: an exec session over SPDY reaches the runtime's streaming
// server through the kubelet API, stdin to stdout and stderr, as kubectl's.
func TestExecProxied(t *testing.T) {
	s, o, rt := streamingServer(t)
	u := mainURL(s, "/exec/default/web/app?command=cat&command=-n&input=1&output=1&error=1")
	conn, err := spdyDial(t, o, "POST", u, "v4.channel.k8s.io")
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	errStream := stream(t, conn, v1.StreamType, v1.StreamTypeError)
	stdin := stream(t, conn, v1.StreamType, v1.StreamTypeStdin)
	stdout := stream(t, conn, v1.StreamType, v1.StreamTypeStdout)
	stderr := stream(t, conn, v1.StreamType, v1.StreamTypeStderr)
	if _, err := io.WriteString(stdin, "hello\n"); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	var outData, errData []byte
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); outData, _ = io.ReadAll(stdout) }()
	go func() { defer wg.Done(); errData, _ = io.ReadAll(stderr) }()
	status, _ := io.ReadAll(errStream)
	wg.Wait()
	if string(outData) != "ran cat -n tty=false\nhello\n" || string(errData) != "to stderr\n" {
		t.Errorf("stdout %q, stderr %q", outData, errData)
	}
	if strings.Contains(string(status), "Failure") {
		t.Errorf("status %s", status)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.execs) != 1 || rt.execs[0] != "ctr-app: cat -n" {
		t.Errorf("runtime execs %q", rt.execs)
	}
}

// TestAttachProxiedOnLocalSocket: attach with a TTY over the local socket.
func TestAttachProxiedOnLocalSocket(t *testing.T) {
	_, o, _ := streamingServer(t)
	c, err := net.Dial("unix", o.LocalSocket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The upgrade by hand: the SPDY round tripper dials TCP only.
	req, _ := http.NewRequest("POST", "http://local/attach/default/web/app?input=1&output=1&tty=1", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Set(httpstream.HeaderProtocolVersion, "v4.channel.k8s.io")
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("attach: %d %s", resp.StatusCode, body)
	}
	conn, err := spdy.NewClientConnection(&bufferedConn{Conn: c, r: br})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	errStream := stream(t, conn, v1.StreamType, v1.StreamTypeError)
	stdin := stream(t, conn, v1.StreamType, v1.StreamTypeStdin)
	stdout := stream(t, conn, v1.StreamType, v1.StreamTypeStdout)
	stream(t, conn, v1.StreamType, v1.StreamTypeResize)
	if _, err := io.WriteString(stdin, "typed\n"); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	out, _ := io.ReadAll(stdout)
	if msg, err := io.ReadAll(errStream); err != nil || !strings.Contains(string(msg), `"status":"Success"`) {
		t.Errorf("attach error stream: %q, %v; want a Success status", msg, err)
	}
	if string(out) != "attached to ctr-app\ntyped\n" {
		t.Errorf("attach output %q", out)
	}
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestPortForwardProxied: a SPDY port-forward, two ports in one connection.
func TestPortForwardProxied(t *testing.T) {
	s, o, _ := streamingServer(t)
	conn, err := spdyDial(t, o, "POST", mainURL(s, "/portForward/default/web"), "portforward.k8s.io")
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	for i, port := range []string{"80", "8443"} {
		id := fmt.Sprint(i)
		stream(t, conn, v1.StreamType, v1.StreamTypeError, v1.PortHeader, port, v1.PortForwardRequestIDHeader, id)
		data := stream(t, conn, v1.StreamType, v1.StreamTypeData, v1.PortHeader, port, v1.PortForwardRequestIDHeader, id)
		if _, err := io.WriteString(data, "ping\n"); err != nil {
			t.Fatalf("port %s: %v", port, err)
		}
		line, err := bufio.NewReader(data).ReadString('\n')
		if err != nil || line != "sb-web:"+port+" ping\n" {
			t.Errorf("port %s: %q %v", port, line, err)
		}
		data.Close()
	}
}

// TestStreamingErrors: unknown pods and containers are 404 with the
// provider's message, a request that is no upgrade 400, missing streams 400;
// the read-only port has no streaming.
func TestStreamingErrors(t *testing.T) {
	s, o, _ := streamingServer(t)
	c := tlsClient(t, o.CertDir, nil)
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"POST", "/exec/default/nope/app?command=ls&output=1", 404, "pod default/nope: not found\n"},
		{"POST", "/exec/default/web/other?command=ls&output=1", 404, `container "other" in pod default/web: not found` + "\n"},
		{"GET", "/exec/default/web/uid-other/app?command=ls&output=1", 404, "pod default/web: not found\n"},
		{"POST", "/exec/default/web/app?command=ls", 400, "you must specify at least 1 of stdin, stdout, stderr\n"},
		{"POST", "/exec/default/web/app?output=1", 400, "exec: no command (query parameter command)\n"},
		{"POST", "/exec/default/web/app?command=ls&output=1", 400, ""},
		{"GET", "/attach/default/nope/app?output=1", 404, ""},
		{"POST", "/portForward/default/nope", 404, ""},
		{"PUT", "/exec/default/web/app?command=ls&output=1", 405, ""},
		{"POST", "/run/default/web/app?cmd=echo%20a%20b", 200, "echo|a|b"},
		{"GET", "/run/default/web/app?cmd=ls", 405, ""},
		{"POST", "/run/default/nope/app?cmd=ls", 404, ""},
	} {
		code, body := do(t, c, tc.method, mainURL(s, tc.path), nil)
		if code != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, code, body, tc.code, tc.body)
		}
	}
}

// TestStreamEndsWithServer: a proxied session still running when the server
// stops is closed (net/http's Shutdown leaves hijacked connections alone).
func TestStreamEndsWithServer(t *testing.T) {
	rt := &streamRuntime{block: make(chan struct{})}
	t.Cleanup(func() { close(rt.block) })
	var lib streaming.Server
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { lib.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	cfg := streaming.DefaultConfig
	cfg.Addr = ts.Listener.Addr().String()
	cfg.BaseURL, _ = url.Parse(ts.URL)
	var err error
	if lib, err = streaming.NewServer(cfg, rt); err != nil {
		t.Fatal(err)
	}
	o := baseOptions(t, &streamingProvider{fakeProvider: &fakeProvider{}, lib: lib})
	o.AnonymousAuth = true
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	conn, err := spdyDial(t, o, "POST", mainURL(s, "/exec/default/web/app?command=sleep&output=1"), "v4.channel.k8s.io")
	if err != nil {
		cancel()
		t.Fatalf("upgrade: %v", err)
	}
	stream(t, conn, v1.StreamType, v1.StreamTypeError)
	stream(t, conn, v1.StreamType, v1.StreamTypeStdout)
	cancel()
	select {
	case <-conn.CloseChan():
	case <-time.After(30 * time.Second):
		t.Fatal("the proxied connection is still open 30 s after the server stopped")
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
