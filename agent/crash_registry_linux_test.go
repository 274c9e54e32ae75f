package agent_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// slowRegistry is an in-memory registry on 127.0.0.1 whose blobs are served
// at a throttled rate, so that a pull takes seconds and a kill can land in
// the middle of it. Each pushed tag is busybox plus a layer of random bytes of
// its own: every pull downloads something.
type slowRegistry struct {
	host     string
	base     ggcrv1.Image
	layer    int64 // bytes of the random layer
	rate     int   // bytes per second of a blob download
	inFlight atomic.Int32
	blobGets atomic.Int64
}

func newSlowRegistry(t *testing.T, layerBytes int64, rate int) *slowRegistry {
	t.Helper()
	base, err := tarball.ImageFromPath(testenv.Image(t, "busybox"), nil)
	if err != nil {
		t.Fatalf("busybox archive: %v", err)
	}
	r := &slowRegistry{base: base, layer: layerBytes, rate: rate}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			r.inFlight.Add(1)
			r.blobGets.Add(1)
			defer r.inFlight.Add(-1)
			w = &throttled{ResponseWriter: w, rate: r.rate}
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// push stores busybox with a random layer as <host>/slow:<tag> and returns
// the reference.
func (r *slowRegistry) push(t *testing.T, tag string) string {
	t.Helper()
	layer, err := random.Layer(r.layer, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(r.base, layer)
	if err != nil {
		t.Fatal(err)
	}
	ref := r.host + "/slow:" + tag
	tagRef, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	// The push itself is not throttled (only GETs of blobs are).
	if err := remote.Write(tagRef, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// throttled writes at most rate bytes per second, in 16 KiB chunks.
type throttled struct {
	http.ResponseWriter
	rate int
}

func (w *throttled) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), 16<<10)
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p = p[n:]
		// Throttling, not waiting for a condition.
		time.Sleep(time.Duration(n) * time.Second / time.Duration(w.rate))
	}
	return written, nil
}
