package cri_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// A minimal streaming client, what kubectl and crictl do through client-go: an
// upgraded SPDY connection with one stream per channel.

// dialStream upgrades a connection to the streaming URL with protocol.
func dialStream(t *testing.T, rawURL, protocol string) httpstream.Connection {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if host := u.Hostname(); host != "127.0.0.1" {
		t.Fatalf("streaming URL %s is not on loopback", rawURL)
	}
	rt, err := spdy.NewRoundTripper(nil)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(httpstream.HeaderProtocolVersion, protocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := rt.NewConnection(resp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func createStream(t *testing.T, conn httpstream.Connection, kv ...string) httpstream.Stream {
	t.Helper()
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	s, err := conn.CreateStream(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// session is a remote command (exec or attach) session, protocol v4.
type session struct {
	conn           httpstream.Connection
	stdin, resize  httpstream.Stream
	stdout, stderr *streamBuffer
	status         chan string // the error stream's JSON status, once the session ends
	outputDone     sync.WaitGroup
}

type streamBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *streamBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *streamBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openSession creates the streams the request asked for, in client-go's order.
func openSession(t *testing.T, rawURL string, stdin, stdout, stderr, tty bool) *session {
	t.Helper()
	s := &session{conn: dialStream(t, rawURL, "v4.channel.k8s.io"), stdout: &streamBuffer{}, stderr: &streamBuffer{}, status: make(chan string, 1)}
	errStream := createStream(t, s.conn, "streamType", "error")
	go func() {
		data, _ := io.ReadAll(errStream)
		s.status <- string(data)
	}()
	if stdin {
		s.stdin = createStream(t, s.conn, "streamType", "stdin")
	}
	for _, o := range []struct {
		want bool
		name string
		buf  *streamBuffer
	}{{stdout, "stdout", s.stdout}, {stderr, "stderr", s.stderr}} {
		if !o.want {
			continue
		}
		st := createStream(t, s.conn, "streamType", o.name)
		s.outputDone.Add(1)
		go func() {
			defer s.outputDone.Done()
			_, _ = io.Copy(o.buf, st) // the stream's end or reset: the test checks what came
		}()
	}
	if tty {
		s.resize = createStream(t, s.conn, "streamType", "resize")
	}
	return s
}

func (s *session) write(t *testing.T, data string) {
	t.Helper()
	if _, err := s.stdin.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
}

func (s *session) setSize(t *testing.T, width, height int) {
	t.Helper()
	if err := json.NewEncoder(s.resize).Encode(map[string]int{"Width": width, "Height": height}); err != nil {
		t.Fatal(err)
	}
}

// wait returns the session's final status (empty for success) once it ended.
func (s *session) wait(t *testing.T) execStatus {
	t.Helper()
	select {
	case raw := <-s.status:
		s.outputDone.Wait()
		var st execStatus
		if raw != "" {
			if err := json.Unmarshal([]byte(raw), &st); err != nil {
				t.Fatalf("status %q: %v", raw, err)
			}
		}
		return st
	case <-time.After(60 * time.Second):
		t.Fatal("the streaming session did not end")
		return execStatus{}
	}
}

// execStatus is the v4 protocol's status (a metav1.Status).
type execStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Details struct {
		Causes []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

func (st execStatus) exitCode() string {
	for _, c := range st.Details.Causes {
		if c.Reason == "ExitCode" {
			return c.Message
		}
	}
	return ""
}

func (h *harness) exec(req *runtime.ExecRequest) *session {
	h.t.Helper()
	resp, err := h.rt.Exec(ctx(h.t), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return openSession(h.t, resp.Url, req.Stdin, req.Stdout, req.Stderr, req.Tty)
}

// startedContainer runs a pod with one running container of cfg, and returns the
// ids of both.
func startedContainer(h *harness, name string, cfg *runtime.ContainerConfig) (string, string) {
	h.t.Helper()
	pod, podCfg := h.runPod(name)
	id := h.createContainer(pod, podCfg, cfg)
	h.startContainer(id)
	h.waitState(id, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	return pod, id
}

// restart replaces the in-process server with a new one over the same state, and
// has the new one remove pods at cleanup (the cleanups runPod registered run after
// the new server's stop).
func (h *harness) restart(pods ...string) {
	h.t.Helper()
	h.stopServer()
	h.start()
	h.t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, pod := range pods {
			// Best effort: the leak checks report what is left.
			_, _ = h.rt.StopPodSandbox(c, &runtime.StopPodSandboxRequest{PodSandboxId: pod})
			_, _ = h.rt.RemovePodSandbox(c, &runtime.RemovePodSandboxRequest{PodSandboxId: pod})
		}
	})
}

func TestExecStreaming(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	c := ctx(t)
	pod, podCfg := h.runPod("exec")
	id := h.createContainer(pod, podCfg, containerConfig("app", busybox, "sleep", "1000"))
	created := h.createContainer(pod, podCfg, containerConfig("idle", busybox, "sleep", "1000"))
	h.startContainer(id)
	h.waitState(id, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)

	for _, tc := range []struct {
		name    string
		req     *runtime.ExecRequest
		code    codes.Code
		mention string
	}{
		{"no container id", &runtime.ExecRequest{Cmd: []string{"true"}, Stdout: true}, codes.InvalidArgument, "container_id"},
		{"no command", &runtime.ExecRequest{ContainerId: id, Stdout: true}, codes.InvalidArgument, "cmd"},
		{"no stream", &runtime.ExecRequest{ContainerId: id, Cmd: []string{"true"}}, codes.InvalidArgument, "stdin"},
		{"tty and stderr", &runtime.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Tty: true, Stdout: true, Stderr: true}, codes.InvalidArgument, "stderr"},
		{"unknown container", &runtime.ExecRequest{ContainerId: "nope", Cmd: []string{"true"}, Stdout: true}, codes.NotFound, "nope"},
		{"container not running", &runtime.ExecRequest{ContainerId: created, Cmd: []string{"true"}, Stdout: true}, codes.FailedPrecondition, "created"},
	} {
		_, err := h.rt.Exec(c, tc.req)
		wantCode(t, tc.name, err, tc.code, tc.mention)
	}

	t.Run("stdin round trip", func(t *testing.T) {
		input := make([]byte, 256<<10)
		rand.Read(input)
		in := fmt.Sprintf("%x\n", input) // text, so that nothing can mangle it
		s := h.exec(&runtime.ExecRequest{ContainerId: id[:12], Cmd: []string{"cat"}, Stdin: true, Stdout: true, Stderr: true})
		go func() {
			if _, err := s.stdin.Write([]byte(in)); err != nil {
				t.Error(err)
			}
			s.stdin.Close() // end of input: cat ends
		}()
		if st := s.wait(t); st.Status == "Failure" {
			t.Fatalf("cat failed: %+v", st)
		}
		if got := s.stdout.String(); got != in {
			t.Fatalf("cat echoed %d bytes, want the %d sent", len(got), len(in))
		}
	})
	t.Run("exit code and stderr", func(t *testing.T) {
		s := h.exec(&runtime.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Stdout: true, Stderr: true})
		st := s.wait(t)
		if st.Status != "Failure" || st.Reason != "NonZeroExitCode" || st.exitCode() != "3" {
			t.Errorf("status %+v, want exit code 3", st)
		}
		if s.stdout.String() != "out\n" || s.stderr.String() != "err\n" {
			t.Errorf("stdout %q, stderr %q", s.stdout.String(), s.stderr.String())
		}
	})
	t.Run("tty with resize", func(t *testing.T) {
		s := h.exec(&runtime.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "tty; while read line; do stty size; done; exit 4"}, Tty: true, Stdin: true, Stdout: true})
		s.setSize(t, 100, 40)
		// The size and the input travel on separate streams: ask until it shows.
		waitFor(t, "the terminal size", 20*time.Second, func() bool {
			s.write(t, "x\n")
			return strings.Contains(s.stdout.String(), "40 100")
		})
		s.write(t, "\x04") // ^D at the start of a line: end of input, on a terminal
		st := s.wait(t)
		if st.exitCode() != "4" {
			t.Errorf("status %+v, want exit code 4", st)
		}
		// (The terminal echoes the input, some of it typed before the shell ran.)
		if out := s.stdout.String(); !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "40 100\r\n") {
			t.Errorf("terminal output %q", out)
		}
	})
	t.Run("process killed when the client goes away", func(t *testing.T) {
		s := h.exec(&runtime.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo started; exec sleep 999"}, Stdout: true})
		waitFor(t, "the exec to start", 10*time.Second, func() bool { return s.stdout.String() == "started\n" })
		running := func() bool {
			r, err := h.rt.ExecSync(c, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"ps"}, Timeout: 10})
			if err != nil {
				t.Fatal(err)
			}
			return strings.Contains(string(r.Stdout), "sleep 999")
		}
		if !running() {
			t.Fatal("exec'd process not found")
		}
		s.conn.Close()
		waitFor(t, "the exec'd process to be killed", 20*time.Second, func() bool { return !running() })
	})
}

func TestAttachStreaming(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	c := ctx(t)

	cfg := containerConfig("cat", busybox, "cat")
	cfg.Stdin = true
	pod, id := startedContainer(h, "attach", cfg)

	_, err := h.rt.Attach(c, &runtime.AttachRequest{ContainerId: "nope", Stdout: true})
	wantCode(t, "attach to an unknown container", err, codes.NotFound, "")
	_, err = h.rt.Attach(c, &runtime.AttachRequest{ContainerId: id})
	wantCode(t, "attach without streams", err, codes.InvalidArgument, "")

	attach := func(id string, stdin bool) *session {
		t.Helper()
		resp, err := h.rt.Attach(c, &runtime.AttachRequest{ContainerId: id, Stdin: stdin, Stdout: true, Stderr: true})
		if err != nil {
			t.Fatal(err)
		}
		return openSession(t, resp.Url, stdin, true, true, false)
	}
	for _, round := range []string{"first", "second"} {
		s := attach(id, true)
		// The attach may connect after the first line: write until one comes back.
		waitFor(t, "the line to come back through cat", 10*time.Second, func() bool {
			s.write(t, round+"\n")
			return strings.Contains(s.stdout.String(), round+"\n")
		})
		// The end of the client's input ends the attach, not the container's stdin.
		s.stdin.Close()
		if st := s.wait(t); st.Status == "Failure" {
			t.Fatalf("%s attach: %+v", round, st)
		}
		if st := h.status(id); st.State != runtime.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("after the %s attach the container is %v", round, st.State)
		}
	}

	// Attach works for a shim restarted since the container started.
	h.restart(pod)
	s := attach(id, true)
	waitFor(t, "the line to come back after a restart", 10*time.Second, func() bool {
		s.write(t, "restarted\n")
		return strings.Contains(s.stdout.String(), "restarted\n")
	})
	s.stdin.Close()
	s.wait(t)

	// stdin_once: the end of the first client's input closes the container's stdin.
	cfg = containerConfig("once", busybox, "sh", "-c", "cat; echo bye")
	cfg.Stdin, cfg.StdinOnce = true, true
	_, once := startedContainer(h, "once", cfg)
	s = attach(once, true)
	s.write(t, "x\n")
	s.stdin.Close()
	if st := s.wait(t); st.Status == "Failure" {
		t.Fatalf("stdin_once attach: %+v", st)
	}
	if got := s.stdout.String(); got != "x\nbye\n" {
		t.Errorf("stdin_once attach saw %q", got)
	}
	if st := h.waitState(once, runtime.ContainerState_CONTAINER_EXITED, 10*time.Second); st.ExitCode != 0 {
		t.Errorf("stdin_once container exited with %d", st.ExitCode)
	}
	_, err = h.rt.Attach(c, &runtime.AttachRequest{ContainerId: once, Stdout: true})
	wantCode(t, "attach to an exited container", err, codes.FailedPrecondition, "")
}

// portForward forwards one connection to port in pod and returns what came back
// for request, and what the error stream said.
func portForward(t *testing.T, rawURL string, port int, request string) (string, string) {
	t.Helper()
	conn := dialStream(t, rawURL, "portforward.k8s.io")
	p := fmt.Sprint(port)
	errStream := createStream(t, conn, "streamType", "error", "port", p, "requestID", "0")
	errc := make(chan string, 1)
	go func() {
		msg, _ := io.ReadAll(errStream)
		errc <- string(msg)
	}()
	// When the forward fails (nothing listens on the port yet), the server
	// writes why on the error stream and resets both streams, at once: the
	// reset can reach the client before the data stream's creation is
	// acknowledged (the streaming library forwards before it replies), or
	// before the request is written. Either is a failed forward, not a failed
	// test.
	failed := func(err error) (string, string) {
		select {
		case msg := <-errc:
			return "", msg
		case <-time.After(30 * time.Second):
			t.Fatalf("port-forward: %v, and the error stream did not end", err)
			return "", ""
		}
	}
	hdr := http.Header{}
	hdr.Set("streamType", "data")
	hdr.Set("port", p)
	hdr.Set("requestID", "0")
	data, err := conn.CreateStream(hdr)
	if err != nil {
		return failed(fmt.Errorf("create the data stream: %w", err))
	}
	if _, err := io.WriteString(data, request); err != nil {
		return failed(fmt.Errorf("write the request: %w", err))
	}
	data.Close() // half-close: the request is complete
	done := make(chan []byte, 1)
	go func() {
		resp, _ := io.ReadAll(data)
		done <- resp
	}()
	select {
	case resp := <-done:
		return string(resp), <-errc
	case <-time.After(30 * time.Second):
		t.Fatal("port-forward did not finish")
		return "", ""
	}
}

func TestPortForwardStreaming(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("web")
	c := ctx(t)
	pod, podCfg := h.runPod("pf")
	id := h.createContainer(pod, podCfg, containerConfig("web", "nodekit.local/web:latest"))
	h.startContainer(id)
	h.waitState(id, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)

	_, err := h.rt.PortForward(c, &runtime.PortForwardRequest{PodSandboxId: "nope", Port: []int32{8080}})
	wantCode(t, "port-forward to an unknown pod", err, codes.NotFound, "")
	_, err = h.rt.PortForward(c, &runtime.PortForwardRequest{PodSandboxId: pod, Port: []int32{0}})
	wantCode(t, "port-forward to port 0", err, codes.InvalidArgument, "")

	forward := func(port int) (string, string) {
		resp, err := h.rt.PortForward(c, &runtime.PortForwardRequest{PodSandboxId: pod[:12], Port: []int32{int32(port)}})
		if err != nil {
			t.Fatal(err)
		}
		return portForward(t, resp.Url, port, "GET /healthz HTTP/1.0\r\nHost: pod\r\n\r\n")
	}
	// httpd listens on the pod's loopback only: nothing on the host answers 8080.
	waitFor(t, "httpd to answer through the port-forward", 20*time.Second, func() bool {
		resp, _ := forward(8080)
		return strings.HasPrefix(resp, "HTTP/1.") && strings.HasSuffix(resp, "\r\n\r\nok\n")
	})
	if resp, msg := forward(8081); resp != "" || !strings.Contains(msg, "connect to port 8081") {
		t.Errorf("port-forward to a closed port: %q, error stream %q", resp, msg)
	}

	// The pod's own namespace, not the host's: stop the pod and forwarding fails
	// up front.
	if _, err := h.rt.StopPodSandbox(c, &runtime.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	_, err = h.rt.PortForward(c, &runtime.PortForwardRequest{PodSandboxId: pod, Port: []int32{8080}})
	wantCode(t, "port-forward to a stopped pod", err, codes.FailedPrecondition, "")
}

// Close ends the sessions still running: the exec'd process is killed.
func TestStreamingCloseEndsSessions(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod, id := startedContainer(h, "close", containerConfig("app", busybox, "sleep", "1000"))
	s := h.exec(&runtime.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo started; exec sleep 998"}, Stdout: true})
	waitFor(t, "the exec to start", 10*time.Second, func() bool { return s.stdout.String() == "started\n" })
	start := time.Now()
	h.restart(pod)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Close took %v", d)
	}
	s.wait(t)
	r, err := h.rt.ExecSync(ctx(t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"ps"}, Timeout: 10})
	if err != nil || strings.Contains(string(r.Stdout), "sleep 998") {
		t.Fatalf("after Close: %v, ps:\n%s", err, r.GetStdout())
	}
}
