package probes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	internalapi "k8s.io/cri-api/pkg/apis"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	criclient "k8s.io/cri-client/pkg"
	"k8s.io/utils/ptr"
)

func newTestManager(t *testing.T, exec ExecRunner) *manager {
	t.Helper()
	pm, err := New(Options{
		Exec:   exec,
		Status: &fakeStatus{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	m := pm.(*manager)
	t.Cleanup(m.Stop)
	return m
}

// probeWith runs probe p of container c against a pod at podIP.
func probeWith(t *testing.T, m *manager, p *v1.Probe, c *v1.Container, podIP string) (Result, string, error) {
	t.Helper()
	if c == nil {
		c = &v1.Container{Name: "c"}
	}
	return m.runProbe(context.Background(), probeTarget{probe: withDefaults(p), container: c, containerID: "abc", podIP: podIP})
}

func hostPort(t *testing.T, rawURL string) (string, int) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), port
}

func httpGetProbe(path string, port intstr.IntOrString) *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: path, Port: port}}}
}

func TestHTTPProbe(t *testing.T) {
	var otherHits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) }))
	t.Cleanup(other.Close)
	_, otherPort := hostPort(t, other.URL)

	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "fine") })
	mux.HandleFunc("/created", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux.HandleFunc("/redirect-local", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/redirect-local-fail", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/fail", http.StatusFound) })
	mux.HandleFunc("/redirect-other-port", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("http://127.0.0.1:%d/", otherPort), http.StatusFound)
	})
	mux.HandleFunc("/redirect-other-host", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("http://localhost:%d/", otherPort), http.StatusMovedPermanently)
	})
	mux.HandleFunc("/redirect-loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/redirect-loop", http.StatusFound) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(make([]byte, 1<<20)) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.URL)

	closed := httptest.NewServer(mux)
	_, closedPort := hostPort(t, closed.URL)
	closed.Close()

	tests := []struct {
		name          string
		path          string
		port          int
		want          Result
		wantOtherHits int32
		wantOutput    string
	}{
		{name: "200", path: "/ok", want: Success, wantOutput: "fine"},
		{name: "201", path: "/created", want: Success},
		{name: "500", path: "/fail", want: Failure, wantOutput: "HTTP probe failed with statuscode: 500"},
		{name: "404", path: "/missing", want: Failure},
		{name: "same-host redirect is followed", path: "/redirect-local", want: Success, wantOutput: "fine"},
		{name: "same-host redirect to a failure fails", path: "/redirect-local-fail", want: Failure},
		{name: "same host, other port is followed", path: "/redirect-other-port", want: Success, wantOtherHits: 1},
		{name: "other host is not followed: success with a warning", path: "/redirect-other-host", want: Success, wantOutput: "Probe terminated redirects"},
		{name: "redirect loop fails", path: "/redirect-loop", want: Failure, wantOutput: "stopped after 10 redirects"},
		{name: "connection refused", path: "/ok", port: closedPort, want: Failure},
	}
	m := newTestManager(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			otherHits.Store(0)
			p := port
			if tc.port != 0 {
				p = tc.port
			}
			got, out, err := probeWith(t, m, httpGetProbe(tc.path, intstr.FromInt32(int32(p))), nil, host)
			if err != nil || got != tc.want {
				t.Fatalf("result %v err %v (output %q), want %v", got, err, out, tc.want)
			}
			if !strings.Contains(out, tc.wantOutput) {
				t.Errorf("output %q, want it to contain %q", out, tc.wantOutput)
			}
			if n := otherHits.Load(); n != tc.wantOtherHits {
				t.Errorf("other server hit %d times, want %d", n, tc.wantOtherHits)
			}
		})
	}

	t.Run("body read is capped at 10 KiB", func(t *testing.T) {
		u, _ := url.Parse(srv.URL + "/big")
		o, body, err := m.http.probe(context.Background(), u, nil, "ua", time.Second)
		if err != nil || o != outcomeSuccess || len(body) != maxBodyLength {
			t.Errorf("outcome %v err %v body %d bytes, want success with %d bytes", o, err, len(body), maxBodyLength)
		}
	})
}

func TestHTTPProbeHeadersAndHost(t *testing.T) {
	type seen struct{ host, ua, accept, custom string }
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, seen{r.Host, r.UserAgent(), r.Header.Get("Accept"), r.Header.Get("X-Custom")})
	}))
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.URL)
	m := newTestManager(t, nil)
	m.userAgent = "kube-probe/1.99"

	tests := []struct {
		name    string
		headers []v1.HTTPHeader
		want    seen
	}{
		{name: "defaults", want: seen{host: srv.Listener.Addr().String(), ua: "kube-probe/1.99", accept: "*/*"}},
		{name: "host override and custom headers",
			headers: []v1.HTTPHeader{{Name: "Host", Value: "example.com"}, {Name: "x-custom", Value: "v"}, {Name: "User-Agent", Value: "mine"}, {Name: "Accept", Value: "text/plain"}},
			want:    seen{host: "example.com", ua: "mine", accept: "text/plain", custom: "v"}},
		{name: "empty Accept removes it", headers: []v1.HTTPHeader{{Name: "Accept", Value: ""}},
			want: seen{host: srv.Listener.Addr().String(), ua: "kube-probe/1.99", accept: ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			p := httpGetProbe("/", intstr.FromInt32(int32(port)))
			p.HTTPGet.HTTPHeaders = tc.headers
			if r, out, err := probeWith(t, m, p, nil, host); r != Success || err != nil {
				t.Fatalf("result %v err %v output %q", r, err, out)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("server saw %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHTTPProbeHTTPSAndPorts(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tlsSrv.Close)
	host, port := hostPort(t, tlsSrv.URL)
	m := newTestManager(t, nil)
	c := &v1.Container{Name: "web", Ports: []v1.ContainerPort{{Name: "https", ContainerPort: int32(port)}}}

	tests := []struct {
		name    string
		scheme  v1.URIScheme
		port    intstr.IntOrString
		host    string // probe host; the pod IP is empty then
		want    Result
		wantErr bool
	}{
		{name: "https, self-signed certificate not verified", scheme: v1.URISchemeHTTPS, port: intstr.FromInt32(int32(port)), want: Success},
		{name: "port by container port name", scheme: v1.URISchemeHTTPS, port: intstr.FromString("https"), want: Success},
		{name: "port number as a string", scheme: v1.URISchemeHTTPS, port: intstr.FromString(strconv.Itoa(port)), want: Success},
		{name: "probe host instead of pod IP", scheme: v1.URISchemeHTTPS, port: intstr.FromInt32(int32(port)), host: host, want: Success},
		{name: "plain http to a TLS server fails", scheme: v1.URISchemeHTTP, port: intstr.FromInt32(int32(port)), want: Failure},
		{name: "unknown port name errors", scheme: v1.URISchemeHTTPS, port: intstr.FromString("nope"), wantErr: true},
		{name: "port out of range errors", scheme: v1.URISchemeHTTPS, port: intstr.FromInt32(70000), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := httpGetProbe("/", tc.port)
			p.HTTPGet.Scheme = tc.scheme
			podIP := host
			if tc.host != "" {
				p.HTTPGet.Host, podIP = tc.host, ""
			}
			r, out, err := probeWith(t, m, p, c, podIP)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && r != tc.want {
				t.Errorf("result %v (output %q), want %v", r, out, tc.want)
			}
		})
	}
}

func TestHTTPProbeTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	m := newTestManager(t, nil)
	u, _ := url.Parse(srv.URL)
	start := time.Now()
	o, out, err := m.http.probe(context.Background(), u, nil, "ua", 200*time.Millisecond)
	if err != nil || o != outcomeFailure {
		t.Fatalf("outcome %v err %v, want a failure", o, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("probe took %s with a 200ms timeout", d)
	}
	if !strings.Contains(out, "Timeout") && !strings.Contains(out, "deadline") {
		t.Errorf("output %q does not say it timed out", out)
	}
}

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	_ = closed.Close()

	m := newTestManager(t, nil)
	c := &v1.Container{Name: "c", Ports: []v1.ContainerPort{{Name: "svc", ContainerPort: int32(port)}}}
	tests := []struct {
		name  string
		port  intstr.IntOrString
		host  string
		podIP string
		want  Result
	}{
		{name: "listening", port: intstr.FromInt32(int32(port)), podIP: "127.0.0.1", want: Success},
		{name: "by port name", port: intstr.FromString("svc"), podIP: "127.0.0.1", want: Success},
		{name: "probe host", port: intstr.FromInt32(int32(port)), host: "127.0.0.1", want: Success},
		{name: "nothing listening", port: intstr.FromInt32(int32(closedPort)), podIP: "127.0.0.1", want: Failure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: tc.port, Host: tc.host}}}
			r, out, err := probeWith(t, m, p, c, tc.podIP)
			if err != nil || r != tc.want {
				t.Errorf("result %v err %v (output %q), want %v", r, err, out, tc.want)
			}
		})
	}
}

func TestGRPCProbe(t *testing.T) {
	var uaMu sync.Mutex
	var userAgents []string
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		uaMu.Lock()
		userAgents = append(userAgents, md.Get("user-agent")...)
		uaMu.Unlock()
		return h(ctx, req)
	}))
	hs := health.NewServer()
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	bare := grpc.NewServer() // no health service
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = bare.Serve(bl) }()
	t.Cleanup(bare.Stop)

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	_ = closed.Close()

	port := l.Addr().(*net.TCPAddr).Port
	m := newTestManager(t, nil)
	m.userAgent = "kube-probe/1.99"
	tests := []struct {
		name       string
		port       int
		service    *string
		want       Result
		wantOutput string
	}{
		{name: "overall status serving", port: port, want: Success},
		{name: "service serving", port: port, service: ptr.To("svc"), want: Success},
		{name: "service not serving", port: port, service: ptr.To("down"), want: Failure, wantOutput: "NOT_SERVING"},
		{name: "unknown service", port: port, service: ptr.To("nope"), want: Failure},
		{name: "no health service", port: bl.Addr().(*net.TCPAddr).Port, want: Failure, wantOutput: "does not implement the grpc health protocol"},
		{name: "nothing listening", port: closedPort, want: Failure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &v1.Probe{ProbeHandler: v1.ProbeHandler{GRPC: &v1.GRPCAction{Port: int32(tc.port), Service: tc.service}}}
			r, out, err := probeWith(t, m, p, nil, "127.0.0.1")
			if err != nil || r != tc.want {
				t.Fatalf("result %v err %v (output %q), want %v", r, err, out, tc.want)
			}
			if !strings.Contains(out, tc.wantOutput) {
				t.Errorf("output %q, want it to contain %q", out, tc.wantOutput)
			}
		})
	}
	uaMu.Lock()
	defer uaMu.Unlock()
	if len(userAgents) == 0 || !strings.HasPrefix(userAgents[0], "kube-probe/1.99") {
		t.Errorf("user agents %q, want kube-probe/1.99 first", userAgents)
	}
}

// The CRI runtime services are ExecRunners.
var (
	_ ExecRunner = internalapi.RuntimeService(nil)
	_ ExecRunner = (*critesting.FakeRuntimeService)(nil)
)

// execFunc adapts a function to ExecRunner.
type execFunc func(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error)

func (f execFunc) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	return f(ctx, id, cmd, timeout)
}

func TestExecProbe(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		want    Result
		wantErr bool
	}{
		{name: "exit 0", err: nil, want: Success},
		{name: "exit 1", err: exitError(1), want: Failure},
		{name: "exit error with code 0", err: exitError(0), want: Success},
		{name: "wrapped exit 2", err: fmt.Errorf("ctx: %w", exitError(2)), want: Failure},
		{name: "cri-client timeout", err: fmt.Errorf("%w: %q timed out after 1s", criclient.ErrCommandTimedOut, "x"), want: Failure},
		{name: "cri-client timeout wrapped", err: fmt.Errorf("ExecSync: %w", fmt.Errorf("%w: %q timed out after 1s", criclient.ErrCommandTimedOut, "x")), want: Failure},
		{name: "cri-client timeout joined", err: errors.Join(errors.New("other"), criclient.ErrCommandTimedOut), want: Failure},
		{name: "a message quoting the text is an error", err: errors.New("command timed out: but not the sentinel"), wantErr: true},
		{name: "context deadline", err: context.DeadlineExceeded, want: Failure},
		{name: "gRPC DeadlineExceeded", err: status.Error(codes.DeadlineExceeded, "exec timed out"), want: Failure},
		{name: "runtime unavailable is an error", err: status.Error(codes.Unavailable, "down"), wantErr: true},
		{name: "container gone is an error", err: errors.New("container not found"), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			var gotCmd []string
			var gotTimeout time.Duration
			var gotID string
			run := execFunc(func(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
				calls.Add(1)
				gotID, gotCmd, gotTimeout = id, cmd, timeout
				if _, ok := ctx.Deadline(); !ok {
					t.Error("ExecSync called without a deadline")
				}
				return []byte("out"), []byte("err"), tc.err
			})
			m := newTestManager(t, run)
			c := &v1.Container{Name: "c", Env: []v1.EnvVar{{Name: "FOO", Value: "bar"}, {Name: "REF", ValueFrom: &v1.EnvVarSource{}}}}
			p := &v1.Probe{TimeoutSeconds: 3, ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{
				Command: []string{"sh", "-c", "echo $(FOO) $$(FOO) $(MISSING) [$(REF)] $"},
			}}}
			r, _, err := probeWith(t, m, p, c, "")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && r != tc.want {
				t.Errorf("result %v, want %v", r, tc.want)
			}
			wantCalls := int32(1)
			if tc.wantErr {
				wantCalls = maxProbeRetries
			}
			if n := calls.Load(); n != wantCalls {
				t.Errorf("%d ExecSync calls, want %d", n, wantCalls)
			}
			wantCmd := []string{"sh", "-c", "echo bar $(FOO) $(MISSING) [] $"}
			if gotID != "abc" || gotTimeout != 3*time.Second || !slices.Equal(gotCmd, wantCmd) {
				t.Errorf("ExecSync(%q, %q, %s), want (abc, %q, 3s)", gotID, gotCmd, gotTimeout, wantCmd)
			}
		})
	}
}

func TestNoHandlerErrors(t *testing.T) {
	m := newTestManager(t, nil)
	if _, _, err := probeWith(t, m, &v1.Probe{}, nil, "127.0.0.1"); err == nil {
		t.Error("a probe without a handler did not error")
	}
	if _, _, err := probeWith(t, m, execProbeSpec("x"), nil, "127.0.0.1"); err == nil {
		t.Error("an exec probe without an ExecRunner did not error")
	}
}

func TestDefaultUserAgent(t *testing.T) {
	if ua := defaultUserAgent(); !regexp.MustCompile(`^kube-probe/1\.\d+$`).MatchString(ua) {
		t.Errorf("user agent %q, want kube-probe/1.<minor>", ua)
	}
}

func TestCRIID(t *testing.T) {
	for in, want := range map[string]string{"nodekit://abc": "abc", "containerd://x": "x", "abc": "abc", "": ""} {
		if got := criID(in); got != want {
			t.Errorf("criID(%q) = %q, want %q", in, got, want)
		}
	}
}
