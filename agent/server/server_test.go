package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodekit-dev/nodekit/internal/testpki"
)

// fakeProvider serves fixed pods, logs and a summary.
type fakeProvider struct {
	mu         sync.Mutex
	pods       []*v1.Pod
	running    []*v1.Pod
	logs       map[string]string // "ns/pod/container" or ".../previous" → path
	summary    *statsapi.Summary
	summaryErr error
	stopped    map[string]bool // log path → its container stopped
}

func (p *fakeProvider) ContainerRunning(_ context.Context, _, _, _, logPath string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.stopped[logPath]
}

func (p *fakeProvider) stop(logPath string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped == nil {
		p.stopped = map[string]bool{}
	}
	p.stopped[logPath] = true
}

func (p *fakeProvider) GetPods() []*v1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pods
}

func (p *fakeProvider) GetRunningPods(context.Context) ([]*v1.Pod, error) { return p.running, nil }

func (p *fakeProvider) GetContainerLogPath(ns, pod, ctr string, previous bool) (string, error) {
	key := ns + "/" + pod + "/" + ctr
	if previous {
		key += "/previous"
	}
	if path, ok := p.logs[key]; ok {
		return path, nil
	}
	return "", fmt.Errorf("no log for %s: %w", key, ErrNotFound)
}

func (p *fakeProvider) Summary(context.Context) (*statsapi.Summary, error) {
	return p.summary, p.summaryErr
}

func testPod(ns, name string, containers ...string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: c, Image: "busybox"})
	}
	p.Status.Phase = v1.PodRunning
	return p
}

// baseOptions are options for a test server: loopback, system-picked ports,
// a certificate directory of the test's own.
func baseOptions(t *testing.T, p Provider) Options {
	return Options{
		Provider:       p,
		Address:        "127.0.0.1",
		HealthzAddress: "127.0.0.1",
		CertDir:        t.TempDir(),
		Hostname:       "node-a",
	}
}

// start binds and runs a server until the test ends; Run's error is checked.
func start(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return s
}

// tlsClient trusts the server's generated certificate and presents cert if given.
func tlsClient(t *testing.T, certDir string, cert *tls.Certificate) *http.Client {
	t.Helper()
	pemData, err := os.ReadFile(filepath.Join(certDir, "kubelet.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatal("no certificate in kubelet.crt")
	}
	cfg := &tls.Config{RootCAs: pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func unixClient(t *testing.T, socket string) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func mainURL(s *Server, path string) string {
	return "https://" + s.Addrs().Main.String() + path
}

func TestMainAPIAnonymousAuth(t *testing.T) {
	for _, tc := range []struct {
		anonymous bool
		want      int
	}{{false, http.StatusUnauthorized}, {true, http.StatusOK}} {
		t.Run("anonymous="+strconv.FormatBool(tc.anonymous), func(t *testing.T) {
			p := &fakeProvider{pods: []*v1.Pod{testPod("default", "web", "nginx"), testPod("kube-system", "dns", "coredns")}}
			o := baseOptions(t, p)
			o.AnonymousAuth = tc.anonymous
			s := start(t, o)
			c := tlsClient(t, o.CertDir, nil)
			for _, path := range []string{"/pods", "/healthz", "/runningpods/", "/stats/summary", "/metrics"} {
				code, body := get(t, c, mainURL(s, path))
				if code == http.StatusOK && path == "/stats/summary" {
					continue // nil summary encodes as null; checked elsewhere
				}
				if code != tc.want {
					t.Errorf("GET %s: status %d (%s), want %d", path, code, body, tc.want)
				}
			}
			if !tc.anonymous {
				return
			}
			code, body := get(t, c, mainURL(s, "/pods"))
			if code != http.StatusOK {
				t.Fatalf("GET /pods: %d %s", code, body)
			}
			var l v1.PodList
			if err := json.Unmarshal([]byte(body), &l); err != nil {
				t.Fatalf("decode PodList: %v\n%s", err, body)
			}
			if l.Kind != "PodList" || l.APIVersion != "v1" {
				t.Errorf("kind/apiVersion = %q/%q, want PodList/v1", l.Kind, l.APIVersion)
			}
			if len(l.Items) != 2 || l.Items[0].Name != "web" || l.Items[1].Spec.Containers[0].Name != "coredns" {
				t.Errorf("items = %+v", l.Items)
			}
		})
	}
}

func TestGeneratedCertificate(t *testing.T) {
	p := &fakeProvider{}
	o := baseOptions(t, p)
	o.NodeIPs = []net.IP{net.ParseIP("10.1.2.3")}
	fc := clocktesting.NewFakeClock(time.Now())
	o.Clock = fc
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	certPEM, err := os.ReadFile(filepath.Join(o.CertDir, "kubelet.crt"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(o.CertDir, "kubelet.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", cert.PublicKey)
	}
	for _, name := range []string{"node-a", "localhost", "127.0.0.1", "::1", "10.1.2.3"} {
		if err := cert.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not name %s: %v", name, err)
		}
	}

	// A restart reuses it while valid and covering the same names...
	again := func(o Options) []byte {
		t.Helper()
		s, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		data, err := os.ReadFile(filepath.Join(o.CertDir, "kubelet.crt"))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if got := again(o); string(got) != string(certPEM) {
		t.Error("certificate regenerated on restart, want reused")
	}
	// ...and replaces it when it expires within a day, or misses a node IP.
	fc.Step(365*24*time.Hour - time.Hour)
	expired := again(o)
	if string(expired) == string(certPEM) {
		t.Error("certificate near expiry was reused")
	}
	o.NodeIPs = append(o.NodeIPs, net.ParseIP("10.9.9.9"))
	if got := again(o); string(got) == string(expired) {
		t.Error("certificate without the new node IP was reused")
	}
}

func TestGivenCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := generateSelfSigned("given.example", []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	o := baseOptions(t, &fakeProvider{})
	o.CertDir = ""
	o.TLSCertFile = certFile
	if _, err := New(o); err == nil {
		t.Fatal("New with a certificate but no key succeeded")
	}
	o.TLSKeyFile = keyFile
	o.AnonymousAuth = true
	s := start(t, o)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, body := get(t, c, mainURL(s, "/healthz")); code != http.StatusOK || body != "ok" {
		t.Errorf("GET /healthz with the given certificate: %d %q", code, body)
	}
}

func TestClientCertificateAuth(t *testing.T) {
	ca, other := testpki.NewCA(t, "test-ca"), testpki.NewCA(t, "other-ca")
	caFile := filepath.Join(t.TempDir(), "ca.PEM")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	o := baseOptions(t, &fakeProvider{pods: []*v1.Pod{testPod("default", "web", "nginx")}})
	o.ClientCAFile = caFile
	s := start(t, o)

	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		want int
	}{
		{"signed by the client CA", ca.ClientCert(t, pkix.Name{CommonName: "system:node:admin"}), http.StatusOK},
		{"signed by another CA", other.ClientCert(t, pkix.Name{CommonName: "mallory"}), http.StatusUnauthorized},
		{"no certificate", nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tlsClient(t, o.CertDir, tc.cert)
			if code, body := get(t, c, mainURL(s, "/pods")); code != tc.want {
				t.Errorf("GET /pods: %d %q, want %d", code, body, tc.want)
			}
		})
	}

	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	o2 := baseOptions(t, &fakeProvider{})
	o2.ClientCAFile = bad
	if _, err := New(o2); err == nil || !strings.Contains(err.Error(), "bad.pem") {
		t.Errorf("New with an unreadable client CA file: err = %v, want one naming the file", err)
	}
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestReadOnlyPort(t *testing.T) {
	p := &fakeProvider{
		pods: []*v1.Pod{testPod("default", "web", "nginx")},
		logs: map[string]string{},
	}
	off := start(t, baseOptions(t, p))
	if off.Addrs().ReadOnly != nil {
		t.Fatalf("read-only port listening by default at %v", off.Addrs().ReadOnly)
	}

	var s *Server
	for attempt := 0; ; attempt++ { // the free port may be taken in between; try again
		o := baseOptions(t, p)
		o.ReadOnlyPort = freePort(t)
		var err error
		if s, err = New(o); err == nil {
			break
		}
		if attempt == 5 {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	c := &http.Client{}
	base := "http://" + s.Addrs().ReadOnly.String()
	for path, want := range map[string]int{
		"/pods":                              http.StatusOK,
		"/healthz":                           http.StatusOK,
		"/metrics":                           http.StatusOK,
		"/runningpods/":                      http.StatusNotFound,
		"/containerLogs/default/web/nginx":   http.StatusNotFound,
		"/containerLogs/default/web/missing": http.StatusNotFound,
	} {
		if code, body := get(t, c, base+path); code != want {
			t.Errorf("read-only GET %s: %d %q, want %d", path, code, body, want)
		}
	}
	if code, _ := get(t, c, base+"/pods"); code == http.StatusOK {
		resp, err := c.Post(base+"/pods", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /pods: %d, want 405", resp.StatusCode)
		}
	}
}

func TestLocalSocket(t *testing.T) {
	running := testPod("default", "web", "nginx")
	p := &fakeProvider{pods: []*v1.Pod{testPod("default", "web", "nginx")}, running: []*v1.Pod{running}}
	o := baseOptions(t, p)
	o.LocalSocket = filepath.Join(t.TempDir(), "run", "kubelet.sock")
	o.Port, o.HealthzPort = -1, -1
	// a stale socket from an earlier run is replaced
	if err := os.MkdirAll(filepath.Dir(o.LocalSocket), 0o755); err != nil {
		t.Fatal(err)
	}
	stale, err := net.Listen("unix", o.LocalSocket)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if a := s.Addrs(); a.Main != nil || a.Healthz != nil || a.LocalSocket != o.LocalSocket {
		t.Errorf("Addrs = %+v, want only the local socket", a)
	}
	fi, err := os.Stat(o.LocalSocket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	l, err := ListPods(context.Background(), o.LocalSocket)
	if err != nil {
		t.Fatalf("ListPods: %v", err)
	}
	if len(l.Items) != 1 || l.Items[0].Name != "web" {
		t.Errorf("ListPods = %+v", l.Items)
	}
	c := unixClient(t, o.LocalSocket)
	code, body := get(t, c, "http://localhost/runningpods/")
	var rl v1.PodList
	if code != http.StatusOK || json.Unmarshal([]byte(body), &rl) != nil || len(rl.Items) != 1 {
		t.Errorf("GET /runningpods/: %d %s", code, body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := os.Stat(o.LocalSocket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Run: %v", err)
	}
	if _, err := ListPods(context.Background(), o.LocalSocket); err == nil {
		t.Error("ListPods after Run succeeded")
	}

	// something else at the socket path is not removed
	o.LocalSocket = filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(o.LocalSocket, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(o); err == nil {
		t.Error("New over a regular file succeeded")
	}
}

func TestHealthz(t *testing.T) {
	var mu sync.Mutex
	var healthErr error
	o := baseOptions(t, &fakeProvider{})
	o.AnonymousAuth = true
	o.Healthz = func() error {
		mu.Lock()
		defer mu.Unlock()
		return healthErr
	}
	s := start(t, o)
	healthz := "http://" + s.Addrs().Healthz.String() + "/healthz"
	c := tlsClient(t, o.CertDir, nil)

	for _, tc := range []struct {
		err      error
		wantCode int
		wantBody string
	}{
		{nil, http.StatusOK, "ok"},
		{errors.New("PLEG is not healthy: pleg was last seen active 4m0s ago"), http.StatusInternalServerError, "PLEG is not healthy"},
		{nil, http.StatusOK, "ok"},
	} {
		mu.Lock()
		healthErr = tc.err
		mu.Unlock()
		for _, url := range []string{healthz, mainURL(s, "/healthz")} {
			code, body := get(t, c, url)
			if code != tc.wantCode || !strings.Contains(body, tc.wantBody) {
				t.Errorf("GET %s with health %v: %d %q, want %d containing %q", url, tc.err, code, body, tc.wantCode, tc.wantBody)
			}
		}
	}
	if code, _ := get(t, c, "http://"+s.Addrs().Healthz.String()+"/pods"); code != http.StatusNotFound {
		t.Errorf("healthz port serves /pods: %d", code)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubelet_pleg_relist_total", Help: "test"}, []string{"kind"})
	reg.MustRegister(c)
	c.WithLabelValues("generic").Add(3)
	o := baseOptions(t, &fakeProvider{})
	o.AnonymousAuth = true
	o.Metrics = reg
	s := start(t, o)
	code, body := get(t, tlsClient(t, o.CertDir, nil), mainURL(s, "/metrics"))
	if code != http.StatusOK || !strings.Contains(body, `kubelet_pleg_relist_total{kind="generic"} 3`) {
		t.Errorf("GET /metrics: %d\n%s", code, body)
	}
}

func TestSummary(t *testing.T) {
	p := &fakeProvider{summary: &statsapi.Summary{
		Node: statsapi.NodeStats{NodeName: "node-a"},
		Pods: []statsapi.PodStats{{PodRef: statsapi.PodReference{Name: "web", Namespace: "default", UID: "u1"}}},
	}}
	o := baseOptions(t, p)
	o.AnonymousAuth = true
	s := start(t, o)
	c := tlsClient(t, o.CertDir, nil)
	code, body := get(t, c, mainURL(s, "/stats/summary"))
	var sum statsapi.Summary
	if code != http.StatusOK || json.Unmarshal([]byte(body), &sum) != nil {
		t.Fatalf("GET /stats/summary: %d %s", code, body)
	}
	if sum.Node.NodeName != "node-a" || len(sum.Pods) != 1 || sum.Pods[0].PodRef.UID != "u1" {
		t.Errorf("summary = %+v", sum)
	}
	p.summaryErr = errors.New("runtime unavailable")
	if code, body := get(t, c, mainURL(s, "/stats/summary")); code != http.StatusInternalServerError || !strings.Contains(body, "runtime unavailable") {
		t.Errorf("GET /stats/summary on error: %d %q", code, body)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a provider succeeded")
	}
	o := baseOptions(t, &fakeProvider{})
	o.CertDir = ""
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "CertDir") {
		t.Errorf("New without CertDir or certificate files: %v", err)
	}
	// a port in use is reported by New, and nothing stays bound
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o = baseOptions(t, &fakeProvider{})
	o.Port = ln.Addr().(*net.TCPAddr).Port
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "main API") {
		t.Errorf("New on a port in use: %v", err)
	}
}
