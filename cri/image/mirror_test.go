//go:build linux

package image

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// upstream is the registry every mirror test pulls "from": it does not exist, and the
// guarded transport makes sure it is never dialled unless a test expects it.
const upstream = "registry.example.invalid"

// guard is an HTTP transport that dials only loopback addresses. Host names listed in
// alias are dialled at 127.0.0.1 (a fake DNS for "remote" mirrors); any other dial is
// refused and recorded.
type guard struct {
	*http.Transport
	alias map[string]bool

	mu      sync.Mutex
	refused []string
}

func newGuard(t *testing.T, alias ...string) *guard {
	g := &guard{alias: map[string]bool{}}
	for _, a := range alias {
		g.alias[a] = true
	}
	var d net.Dialer
	g.Transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if g.alias[host] {
				return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			}
			if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
				return d.DialContext(ctx, network, addr)
			}
			g.mu.Lock()
			g.refused = append(g.refused, addr)
			g.mu.Unlock()
			return nil, fmt.Errorf("test transport: refusing to dial non-loopback %s", addr)
		},
	}
	t.Cleanup(g.CloseIdleConnections)
	return g
}

func (g *guard) dials() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.refused)
}

// counted serves a registry on 127.0.0.1 (optionally also under a path prefix, and
// behind wrap) and counts the manifest requests it answers.
type counted struct {
	host      string
	manifests atomic.Int32
}

func startCounted(t *testing.T, prefix string, wrap func(http.Handler) http.Handler) *counted {
	t.Helper()
	c := &counted{}
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Under a prefix, only prefixed requests count; others (the test's pushes)
		// reach the registry as they are.
		p, cut := strings.CutPrefix(r.URL.Path, prefix+"/")
		if prefix != "" && cut {
			r.URL.Path = "/" + p
		}
		if strings.Contains(r.URL.Path, "/manifests/") && (prefix == "" || cut) {
			c.manifests.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.host = strings.TrimPrefix(srv.URL, "http://")
	return c
}

// closedPort returns a loopback host:port nobody listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "registries.toml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mirrorStore(t *testing.T, config string, g *guard) *Store {
	t.Helper()
	s, err := New(Options{Root: t.TempDir(), Platform: amd64, Logger: testLogger(t), Transport: g.Transport, RegistryConfig: config})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPullThroughMirrors(t *testing.T) {
	_, img, other := sharedImages(t)
	dig := manifestDigest(t, img)

	full := startCounted(t, "", nil) // has the image
	push(t, full.host+"/team/app:v1", img)
	empty := startCounted(t, "", nil) // has no image
	prefixed := startCounted(t, "/hub", nil)
	push(t, prefixed.host+"/team/app:v1", img)
	// liar serves another image's manifest for every manifest request.
	otherManifest, _ := other.RawManifest()
	liar := startCounted(t, "", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") {
				w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
				w.Header().Set("Docker-Content-Digest", dig) // lies
				w.Header().Set("Content-Length", fmt.Sprint(len(otherManifest)))
				if r.Method == http.MethodGet {
					w.Write(otherManifest)
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	closed := closedPort(t)

	tests := []struct {
		name    string
		mirrors string // TOML list
		only    bool
		ref     string
		served  []*counted // mirrors that must have answered a manifest request
		refused int        // dials of the upstream expected
		fail    []string   // when set, the pull fails with these substrings
	}{
		{name: "mirror has it", mirrors: fmt.Sprintf(`["http://%s"]`, full.host), ref: ":v1", served: []*counted{full}},
		{name: "first mirror down", mirrors: fmt.Sprintf(`["http://%s", "http://%s"]`, closed, full.host), ref: ":v1", served: []*counted{full}},
		{name: "first mirror lacks the image", mirrors: fmt.Sprintf(`["http://%s", "http://%s"]`, empty.host, full.host), ref: ":v1",
			served: []*counted{empty, full}},
		{name: "path prefix", mirrors: fmt.Sprintf(`["http://%s/hub"]`, prefixed.host), ref: ":v1", served: []*counted{prefixed}},
		{name: "by digest", mirrors: fmt.Sprintf(`["http://%s"]`, full.host), ref: "@" + dig, served: []*counted{full}},
		{name: "digest verified, next mirror", mirrors: fmt.Sprintf(`["http://%s", "http://%s"]`, liar.host, full.host), ref: "@" + dig,
			served: []*counted{liar, full}},
		{name: "digest verified, no other mirror", mirrors: fmt.Sprintf(`["http://%s"]`, liar.host), only: true, ref: "@" + dig,
			served: []*counted{liar}, fail: []string{"http://" + liar.host + ": ", dig}},
		{name: "all mirrors fail, then upstream", mirrors: fmt.Sprintf(`["http://%s", "http://%s"]`, closed, empty.host), ref: ":v1",
			served: []*counted{empty}, refused: 1,
			fail: []string{"all 3 endpoints failed", "http://" + closed + ": ", "http://" + empty.host + ": ", upstream + ": "}},
		{name: "mirrors only", mirrors: fmt.Sprintf(`["http://%s"]`, empty.host), only: true, ref: ":v1",
			served: []*counted{empty}, fail: []string{"http://" + empty.host}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := map[*counted]int32{}
			for _, c := range tc.served {
				before[c] = c.manifests.Load()
			}
			cfg := fmt.Sprintf("[registry.%q]\nmirrors = %s\nmirrors_only = %v\n", upstream, tc.mirrors, tc.only)
			g := newGuard(t)
			s := mirrorStore(t, writeConfig(t, cfg), g)
			ref := upstream + "/team/app" + tc.ref
			got, err := s.Pull(context.Background(), ref, nil)
			for _, c := range tc.served {
				if c.manifests.Load() == before[c] {
					t.Errorf("mirror %s was not asked", c.host)
				}
			}
			if d := g.dials(); len(d) != tc.refused {
				t.Errorf("non-loopback dials %v, want %d", d, tc.refused)
			}
			if tc.fail != nil {
				if err == nil {
					t.Fatalf("Pull succeeded: %+v", got)
				}
				t.Logf("Pull error: %v", err)
				for _, w := range tc.fail {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q", w)
					}
				}
				if list, _ := s.List(); len(list) != 0 {
					t.Errorf("images after a failed pull: %v", list)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantTags := []string{ref}
			if strings.HasPrefix(tc.ref, "@") {
				wantTags = nil
			}
			if got.ID != imageID(t, img) || !slices.Equal(got.RepoTags, wantTags) ||
				!slices.Equal(got.RepoDigests, []string{upstream + "/team/app@" + dig}) {
				t.Errorf("pulled %+v, want id %s under the upstream name", got, imageID(t, img))
			}
			if again, err := s.Get(ref); err != nil || again.ID != got.ID {
				t.Errorf("Get(%s) = %v, %v", ref, again.ID, err)
			}
		})
	}
}

// docker.io references reach a mirror under their full repository path.
func TestPullDockerHubThroughMirror(t *testing.T) {
	_, img, _ := sharedImages(t)
	m := startCounted(t, "", nil)
	push(t, m.host+"/library/busybox:latest", img)
	g := newGuard(t)
	s := mirrorStore(t, writeConfig(t, fmt.Sprintf("[registry.\"docker.io\"]\nmirrors = [\"http://%s\"]\nmirrors_only = true\n", m.host)), g)
	got, err := s.Pull(context.Background(), "busybox", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.RepoTags, []string{"docker.io/library/busybox:latest"}) {
		t.Errorf("tags %v", got.RepoTags)
	}
	if len(g.dials()) != 0 {
		t.Errorf("dialled %v", g.dials())
	}
}

// Plain HTTP to a non-loopback mirror needs insecure = true; with it the pull works.
func TestPullInsecureMirror(t *testing.T) {
	_, img, _ := sharedImages(t)
	m := startCounted(t, "", nil)
	push(t, m.host+"/team/app:v1", img)
	_, port, _ := net.SplitHostPort(m.host)
	remoteName := "mirror.example.invalid:" + port // dialled at 127.0.0.1 by the guard
	ref := upstream + "/team/app:v1"

	for _, insecure := range []bool{false, true} {
		t.Run(fmt.Sprintf("insecure=%v", insecure), func(t *testing.T) {
			before := m.manifests.Load()
			cfg := writeConfig(t, fmt.Sprintf("[registry.%q]\nmirrors = [{url = \"http://%s\", insecure = %v}]\nmirrors_only = true\n",
				upstream, remoteName, insecure))
			g := newGuard(t, "mirror.example.invalid")
			s := mirrorStore(t, cfg, g)
			got, err := s.Pull(context.Background(), ref, nil)
			if insecure {
				if err != nil || got.ID != imageID(t, img) {
					t.Fatalf("Pull = %+v, %v", got, err)
				}
				return
			}
			if err == nil {
				t.Fatal("plain HTTP to a non-loopback mirror was allowed")
			}
			t.Logf("Pull error: %v", err)
			if !errors.Is(err, ErrRegistryConfig) || !strings.Contains(err.Error(), cfg) ||
				!strings.Contains(err.Error(), fmt.Sprintf("registry.%q: mirrors[0]", upstream)) {
				t.Errorf("error %v does not name the file and the entry", err)
			}
			if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition {
				t.Errorf("code %v, want FailedPrecondition", st.Code())
			}
			if m.manifests.Load() != before {
				t.Error("the mirror was contacted")
			}
		})
	}

	// An insecure upstream (no mirrors) is reached over plain HTTP too.
	t.Run("insecure upstream", func(t *testing.T) {
		host := "plain.example.invalid:" + port
		g := newGuard(t, "plain.example.invalid")
		s := mirrorStore(t, writeConfig(t, fmt.Sprintf("[registry.%q]\ninsecure = true\n", host)), g)
		if got, err := s.Pull(context.Background(), host+"/team/app:v1", nil); err != nil || got.RepoTags[0] != host+"/team/app:v1" {
			t.Fatalf("Pull = %+v, %v", got, err)
		}
		s2 := mirrorStore(t, "", g)
		if _, err := s2.Pull(context.Background(), host+"/team/app:v1", nil); err == nil {
			t.Error("without the config the plain-HTTP registry was used")
		}
	})
}

// TLS mirrors: a self-signed mirror fails verification unless its CA is given or
// skip_verify is set.
func TestPullTLSMirror(t *testing.T) {
	_, img, _ := sharedImages(t)
	srv := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	push(t, host+"/team/app:v1", img, remote.WithTransport(srv.Client().Transport))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, mirror string
		ok           bool
	}{
		{"unverified", fmt.Sprintf(`"https://%s"`, host), false},
		{"ca", fmt.Sprintf(`{url = "https://%s", ca = %q}`, host, ca), true},
		{"skip_verify", fmt.Sprintf(`{url = "https://%s", skip_verify = true}`, host), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGuard(t)
			g.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			s := mirrorStore(t, writeConfig(t, fmt.Sprintf("[registry.%q]\nmirrors = [%s]\nmirrors_only = true\n", upstream, tc.mirror)), g)
			got, err := s.Pull(context.Background(), upstream+"/team/app:v1", nil)
			if tc.ok && (err != nil || got.ID != imageID(t, img)) {
				t.Fatalf("Pull = %+v, %v", got, err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "certificate")) {
				t.Fatalf("Pull = %v, want a certificate error", err)
			}
		})
	}
}

// The file is read at every pull: a broken file fails pulls naming file:line, fixing
// it (no restart) makes them work.
func TestRegistryConfigEditedBetweenPulls(t *testing.T) {
	_, img, _ := sharedImages(t)
	m := startCounted(t, "", nil)
	push(t, m.host+"/team/app:v1", img)
	cfg := writeConfig(t, "[registry.\"registry.example.invalid\"]\nmirrors = [\n")
	g := newGuard(t)
	s := mirrorStore(t, cfg, g)
	ref := upstream + "/team/app:v1"
	_, err := s.Pull(context.Background(), ref, nil)
	if err == nil || !strings.Contains(err.Error(), cfg+":2:") {
		t.Fatalf("Pull with a broken config = %v, want an error naming %s:2", err, cfg)
	}
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition {
		t.Errorf("code %v, want FailedPrecondition", st.Code())
	}
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "[registry.%q]\nmirrors = [\"http://%s\"]\n", upstream, m.host), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Pull(context.Background(), ref, nil); err != nil || got.ID != imageID(t, img) {
		t.Fatalf("Pull after the fix = %+v, %v", got, err)
	}
	if len(g.dials()) != 0 {
		t.Errorf("dialled %v", g.dials())
	}
}

// A pull that ends because its context did reports the context's gRPC code, whatever
// the endpoint was doing (here: a registry that never answers).
func TestPullContextEnded(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); hang.Close() })
	host := strings.TrimPrefix(hang.URL, "http://")
	g := newGuard(t)
	s := mirrorStore(t, writeConfig(t, fmt.Sprintf("[registry.%q]\nmirrors = [\"http://%s\"]\n", upstream, host)), g)

	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want codes.Code
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, codes.DeadlineExceeded},
		{"canceled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, codes.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			_, err := s.Pull(ctx, upstream+"/team/app:v1", nil)
			if st, _ := status.FromError(err); st.Code() != tc.want || !strings.Contains(st.Message(), upstream+"/team/app:v1") {
				t.Errorf("Pull = %v (code %v), want %v naming the image", err, st.Code(), tc.want)
			}
			if len(g.dials()) != 0 {
				t.Errorf("the upstream was dialled after the context ended: %v", g.dials())
			}
		})
	}
}
