//go:build linux

package image

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// startRegistry serves an in-memory registry on 127.0.0.1 and returns its host:port.
func startRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func push(t *testing.T, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func multiPlatformIndex(t testing.TB) (v1.ImageIndex, map[string]v1.Image) {
	arm64 := &v1.Platform{OS: "linux", Architecture: "arm64"}
	amd := newImage(t, v1.Config{Cmd: []string{"amd64"}}, amd64, newLayer(t, types.OCILayer, map[string]string{"arch": "amd64"}))
	arm := newImage(t, v1.Config{Cmd: []string{"arm64"}}, arm64, newLayer(t, types.OCILayer, map[string]string{"arch": "arm64"}))
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: arm64}}, // not first on purpose
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: amd64}},
	)
	return idx, map[string]v1.Image{"amd64": amd, "arm64": arm}
}

func TestPullByTagAndDigest(t *testing.T) {
	host := startRegistry(t, nil)
	_, a, _ := sharedImages(t)
	push(t, host+"/test/app:v1", a)
	ctx := context.Background()
	repo := host + "/test/app"
	dig := manifestDigest(t, a)

	s := newStore(t, t.TempDir())
	img, err := s.Pull(ctx, repo+":v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != imageID(t, a) || !slices.Equal(img.RepoTags, []string{repo + ":v1"}) || !slices.Equal(img.RepoDigests, []string{repo + "@" + dig}) {
		t.Errorf("pulled %+v", img)
	}
	if got := mustGet(t, s, repo+"@"+dig); got.ID != img.ID {
		t.Errorf("Get by digest = %s", got.ID)
	}
	dirs, err := s.LayerDirs(img)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dirs[1], "bin/web")); err != nil || string(b) != "web" {
		t.Errorf("bin/web = %q, %v", b, err)
	}
	if again, err := s.Pull(ctx, repo+":v1", nil); err != nil || again.ID != img.ID {
		t.Errorf("second pull = %+v, %v", again, err)
	}

	s2 := newStore(t, t.TempDir())
	byDigest, err := s2.Pull(ctx, repo+"@"+dig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if byDigest.ID != img.ID || len(byDigest.RepoTags) != 0 || !slices.Equal(byDigest.RepoDigests, []string{repo + "@" + dig}) {
		t.Errorf("pulled by digest: %+v", byDigest)
	}
	if _, err := s2.Pull(ctx, repo+":missing", nil); err == nil {
		t.Error("pull of a missing tag succeeded")
	}
}

func TestPullMultiPlatform(t *testing.T) {
	host := startRegistry(t, nil)
	idx, imgs := multiPlatformIndex(t)
	r, _ := name.ParseReference(host+"/multi:1", name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	for arch, want := range imgs {
		s, err := New(Options{Root: t.TempDir(), Platform: &v1.Platform{OS: "linux", Architecture: arch}, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		img, err := s.Pull(context.Background(), host+"/multi:1", nil)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if img.ID != imageID(t, want) || img.Config.Cmd[0] != arch {
			t.Errorf("%s store pulled %s (cmd %v), want %s", arch, img.ID, img.Config.Cmd, imageID(t, want))
		}
		if want := host + "/multi@" + manifestDigest(t, idx); !slices.Equal(img.RepoDigests, []string{want}) {
			t.Errorf("repo digests %v, want the index digest %s", img.RepoDigests, want)
		}
	}
}

func TestPullBasicAuth(t *testing.T) {
	const user, pass = "nodekit", "s3cret"
	host := startRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	img := newImage(t, v1.Config{}, nil, newLayer(t, types.OCILayer, map[string]string{"f": "x"}))
	push(t, host+"/private/app:1", img, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))

	tests := []struct {
		name string
		auth *Auth
		ok   bool
	}{
		{"anonymous", nil, false},
		{"wrong password", &Auth{Username: user, Password: "nope"}, false},
		{"username and password", &Auth{Username: user, Password: pass}, true},
		{"auth string", &Auth{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}, true},
		{"matching server address", &Auth{Username: user, Password: pass, ServerAddress: "http://" + host}, true},
		{"credentials for another registry", &Auth{Username: user, Password: pass, ServerAddress: "registry.example.com"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, t.TempDir())
			got, err := s.Pull(context.Background(), host+"/private/app:1", tc.auth)
			if tc.ok && (err != nil || got.ID != imageID(t, img)) {
				t.Fatalf("Pull = %+v, %v", got, err)
			}
			if !tc.ok && err == nil {
				t.Fatal("Pull succeeded without valid credentials")
			}
		})
	}
}

// corrupting serves blob digest with one byte flipped.
func corrupting(digest string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+digest) {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := bytes.Clone(rec.Body.Bytes())
			if len(body) > 0 {
				body[len(body)/2] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	}
}

func TestPullCorruptedBlob(t *testing.T) {
	l := newLayer(t, types.OCIUncompressedLayer, map[string]string{"data": strings.Repeat("payload ", 512)})
	img := newImage(t, v1.Config{}, nil, l)
	cfg, _ := img.ConfigName()
	for what, digest := range map[string]string{"layer": sha(l.blob).String(), "config": cfg.String()} {
		t.Run(what, func(t *testing.T) {
			host := startRegistry(t, corrupting(digest))
			push(t, host+"/bad:1", img)
			root := t.TempDir()
			s := newStore(t, root)
			_, err := s.Pull(context.Background(), host+"/bad:1", nil)
			if err == nil || !strings.Contains(err.Error(), digest) {
				t.Fatalf("Pull = %v, want an error naming blob %s", err, digest)
			}
			t.Logf("Pull error: %v", err)
			if list, _ := s.List(); len(list) != 0 {
				t.Errorf("corrupted image recorded: %v", list)
			}
			for _, d := range []string{"layers", "tmp"} {
				if got := dirNames(t, filepath.Join(root, d)); len(got) != 0 {
					t.Errorf("%s/ = %v", d, got)
				}
			}
		})
	}
}

// Pulls and imports of images sharing layers, in parallel, from two Stores on one root
// (the daemon and the import command): all succeed and each layer ends up once.
func TestConcurrentPullsAndImports(t *testing.T) {
	host := startRegistry(t, nil)
	base, a, b := sharedImages(t)
	push(t, host+"/a:1", a)
	push(t, host+"/b:1", b)
	archive := dockerTar(t, map[string]v1.Image{"imported/a:1": a}).Bytes()
	root := t.TempDir()
	stores := []*Store{newStore(t, root), newStore(t, root)}

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[i%2]
			var err error
			switch i % 3 {
			case 0:
				_, err = s.Pull(context.Background(), host+"/a:1", nil)
			case 1:
				_, err = s.Pull(context.Background(), host+"/b:1", nil)
			case 2:
				_, err = s.Import(context.Background(), bytes.NewReader(archive))
			}
			if err != nil {
				errs <- fmt.Errorf("worker %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := stores[0].List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	ia := mustGet(t, stores[1], "imported/a:1")
	if !slices.Equal(sorted(ia.RepoTags), sorted([]string{"docker.io/imported/a:1", host + "/a:1"})) {
		t.Errorf("a's tags = %v", ia.RepoTags)
	}
	if got := dirNames(t, filepath.Join(root, "layers")); len(got) != 3 || !slices.Contains(got, base.diffID.Hex) {
		t.Errorf("layers = %v, want 3", got)
	}
	if got := dirNames(t, filepath.Join(root, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ = %v", got)
	}
}

func TestEndpointPolicy(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost:80": true, "[::1]:5000": true, "127.9.9.9": true,
		"10.0.0.1:5000": false, "registry.example.com": false, "localhost.example.com:5000": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
	tr := &httpsOnly{base: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}), allowHTTP: isLoopback}
	for url, ok := range map[string]bool{
		"http://127.0.0.1:5000/v2/": true, "https://10.0.0.1/v2/": true,
		"http://10.0.0.1/v2/": false, "http://registry.example.com/v2/": false,
	} {
		req, _ := http.NewRequest("GET", url, nil)
		_, err := tr.RoundTrip(req)
		if (err == nil) != ok {
			t.Errorf("RoundTrip(%s) = %v, want allowed=%v", url, err, ok)
		}
	}
	for _, tc := range []struct {
		auth *Auth
		host string
		anon bool
	}{
		{nil, "r.io", true},
		{&Auth{}, "r.io", true},
		{&Auth{Username: "u", Password: "p"}, "r.io", false},
		{&Auth{Username: "u", ServerAddress: "https://r.io/v1/"}, "r.io", false},
		{&Auth{Username: "u", ServerAddress: "other.io"}, "r.io", true},
		{&Auth{Username: "u", ServerAddress: "https://index.docker.io/v1/"}, "index.docker.io", false},
		{&Auth{IdentityToken: "tok"}, "r.io", false},
		{&Auth{RegistryToken: "tok"}, "r.io", false},
	} {
		got := authenticator(tc.auth, tc.host)
		if (got == authn.Anonymous) != tc.anon {
			t.Errorf("authenticator(%+v, %s) anonymous = %v, want %v", tc.auth, tc.host, got == authn.Anonymous, tc.anon)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
