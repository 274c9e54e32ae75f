package testshim

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	internalapi "k8s.io/cri-api/pkg/apis"
	criclient "k8s.io/cri-client/pkg"

	"github.com/nodekit-dev/nodekit/cri"
	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// Options are the shim's settings. Dir is required; the rest has defaults.
type Options struct {
	// Dir holds the shim's root (Dir/root), state (Dir/state) and socket
	// (Dir/cri.sock) unless set below. Keep it short (testenv.TempDir): unix
	// socket paths are limited to 108 bytes.
	Dir                 string
	Root, State, Socket string
	// CgroupParent is where pods without a cgroup parent of their own go.
	CgroupParent string
	// CNIConfDir defaults to Dir/net.d, which holds no configuration: pods
	// then need the host network.
	CNIConfDir string
	CNIBinDirs []string
	// Logger gets the shim's log (nil: discarded).
	Logger *slog.Logger
	// Images are sample images (by name, see testenv.Image) imported before
	// the shim serves.
	Images []string
	// Timeout is the clients' timeout of a CRI call (default 2 minutes, as the
	// kubelet's).
	Timeout time.Duration
}

// Shim is a running shim and its clients.
type Shim struct {
	Server              *cri.Server
	Dir                 string // Options.Dir
	Root, State, Socket string
	Runtime             internalapi.RuntimeService
	Images              internalapi.ImageManagerService
}

// Start starts the shim. Its cleanup, registered with t.Cleanup, stops serving
// and closes the shim, failing the test if closing fails; it runs after the
// cleanups registered later (the test's pods), and before those registered
// earlier (checks of what the shim left).
func Start(t *testing.T, o Options) *Shim {
	t.Helper()
	testenv.RequireRoot(t)
	runc, monitor := testenv.Binary(t, "runc"), testenv.Binary(t, "nodekit-monitor")
	var images []string
	for _, name := range o.Images {
		images = append(images, testenv.Image(t, name))
	}
	if o.Dir == "" {
		t.Fatal("testshim: Options.Dir is required")
	}
	def := func(v *string, p string) {
		if *v == "" {
			*v = filepath.Join(o.Dir, p)
		}
	}
	def(&o.Root, "root")
	def(&o.State, "state")
	def(&o.Socket, "cri.sock")
	def(&o.CNIConfDir, "net.d")
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}

	srv, err := cri.New(cri.Options{
		Root:         o.Root,
		State:        o.State,
		Runtime:      runc,
		Monitor:      monitor,
		CgroupParent: o.CgroupParent,
		CNIConfDir:   o.CNIConfDir,
		CNIBinDirs:   o.CNIBinDirs,
		Logger:       o.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, image := range images {
		if err := importImage(context.Background(), srv, image); err != nil {
			srv.Close()
			t.Fatal(err)
		}
	}
	l, err := cri.Listen(o.Socket)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	// Serve returns nil after Stop; an error before (the listener failed) shows
	// as the calls' failures.
	go func() { _ = g.Serve(l) }()
	t.Cleanup(func() {
		g.Stop()
		if err := srv.Close(); err != nil {
			t.Errorf("shim close: %v", err)
		}
	})

	s := &Shim{Server: srv, Dir: o.Dir, Root: o.Root, State: o.State, Socket: o.Socket}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	endpoint := "unix://" + o.Socket
	if s.Runtime, err = criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint(endpoint).
		WithConnectionTimeout(o.Timeout).WithTracerProvider(nil).Build(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Images, err = criclient.NewRemoteImageServiceBuilder().WithEndpoint(endpoint).
		WithConnectionTimeout(o.Timeout).WithTracerProvider(nil).Build(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// importImage imports an image archive into the shim's store.
func importImage(ctx context.Context, srv *cri.Server, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = srv.Images().Import(ctx, f)
	return err
}
