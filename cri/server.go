package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/grpc"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/cni"
	"github.com/nodekit-dev/nodekit/cri/image"
	"github.com/nodekit-dev/nodekit/cri/runc"
)

// Cgroup drivers.
const (
	CgroupfsDriver = "cgroupfs"
	SystemdDriver  = "systemd"
)

// Options configures a Server. Zero values pick the documented defaults.
type Options struct {
	// Root holds persistent data: images, layers, writable container layers
	// (default /var/lib/nodekit).
	Root string
	// State holds runtime state that a reboot clears: records, bundles, mount points,
	// pinned namespaces, exit records (default /run/nodekit).
	State string
	// Runtime is the OCI runtime binary (default: runc from PATH).
	Runtime string
	// Monitor is the nodekit-monitor binary (default: next to the running
	// executable, else from PATH).
	Monitor string
	// CgroupDriver is "cgroupfs" (default) or "systemd".
	CgroupDriver string
	// CgroupParent is where pods without a cgroup parent of their own go
	// (default "/nodekit" for cgroupfs, "nodekit.slice" for systemd).
	CgroupParent string
	// CNIConfDir holds CNI network configurations (default /etc/cni/net.d).
	CNIConfDir string
	// CNIBinDirs are searched for CNI plugins (default /usr/lib/cni and /opt/cni/bin).
	CNIBinDirs []string
	// StreamAddress is where the streaming server for exec, attach and port-forward
	// listens (default 127.0.0.1:0, loopback on a free port).
	StreamAddress string
	// RegistryConfig is the registry mirrors file (default
	// /etc/nodekit/registries.toml; a missing file means no mirrors).
	RegistryConfig string
	// Logger receives the shim's logs (default slog.Default()).
	Logger *slog.Logger
}

// Server implements the CRI RuntimeService and ImageService.
type Server struct {
	runtime.UnimplementedRuntimeServiceServer
	runtime.UnimplementedImageServiceServer

	opts    Options
	log     *slog.Logger
	paths   paths
	objs    *objects
	images  *image.Store
	oci     ociRuntime // runc and the monitors (oci.go)
	cgroups cgroupDriver
	oomMin  int // our own oom_score_adj: containers may not go below it

	features runtimeFeatures // what the OCI runtime offers (status.go)

	network *cni.Manager // pod networking (network.go)
	stats   *statsState  // stats samples and caches (stats.go)

	stream *streamServer // exec, attach and port-forward sessions (streaming.go)

	// imageUse is held shared by CreateContainer from the moment it looks up
	// its images until the container is listed, and exclusively by
	// RemoveImage, so that an image is not removed (nor its layers collected)
	// under a container being created, and RemoveImage sees every container
	// that mounts the image as a volume.
	imageUse sync.RWMutex

	exits    *exitWatcher
	events   eventBus
	bg       sync.WaitGroup
	retrying sync.Map // keys of the retries running (Server.retry)
	attached sync.Map // ids of the sandboxes whose network this process attached (network.go)
	closeErr error
	closed   chan struct{}
	once     sync.Once
}

// New opens (or creates) the shim's directories, loads the image store, recovers the
// sandboxes and containers a previous run left, and starts watching exits.
func New(opts Options) (*Server, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s := &Server{
		opts:   opts,
		log:    opts.Logger,
		paths:  paths{root: opts.Root, state: opts.State},
		objs:   newObjects(),
		closed: make(chan struct{}),
	}
	if err := s.paths.mkdirs(); err != nil {
		return nil, fmt.Errorf("cri: create directories: %w", err)
	}
	var err error
	s.images, err = image.New(image.Options{Root: s.paths.images(), Logger: s.log, RegistryConfig: opts.RegistryConfig})
	if err != nil {
		return nil, fmt.Errorf("cri: open image store: %w", err)
	}
	rc, err := runc.New(runc.Options{
		Binary:        opts.Runtime,
		Root:          s.paths.runcRoot(),
		SystemdCgroup: opts.CgroupDriver == SystemdDriver,
	})
	if err != nil {
		return nil, fmt.Errorf("cri: %w", err)
	}
	s.oci = runcRuntime{Runtime: rc, monitor: opts.Monitor}
	s.cgroups = newCgroupDriver(opts.CgroupDriver, opts.CgroupParent)
	s.oomMin = ownOOMScoreAdj()
	s.detectFeatures()
	s.exits, err = newExitWatcher(s.paths.exitsDir(), s.onExit, s.log)
	if err != nil {
		return nil, fmt.Errorf("cri: %w", err)
	}
	if err := s.initNetwork(); err != nil {
		s.exits.close()
		return nil, fmt.Errorf("cri: %w", err)
	}
	if err := s.initStats(); err != nil {
		s.exits.close()
		return nil, fmt.Errorf("cri: %w", err)
	}
	if err := s.recover(context.Background()); err != nil {
		s.exits.close()
		return nil, fmt.Errorf("cri: recover state: %w", err)
	}
	if err := s.initStreaming(); err != nil {
		s.exits.close()
		return nil, fmt.Errorf("cri: %w", err)
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.exits.run()
	}()
	return s, nil
}

func (o *Options) defaults() error {
	if o.Root == "" {
		o.Root = "/var/lib/nodekit"
	}
	if o.State == "" {
		o.State = "/run/nodekit"
	}
	var err error
	if o.Root, err = filepath.Abs(o.Root); err != nil {
		return err
	}
	if o.State, err = filepath.Abs(o.State); err != nil {
		return err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch o.CgroupDriver {
	case "":
		o.CgroupDriver = CgroupfsDriver
	case CgroupfsDriver, SystemdDriver:
	default:
		return fmt.Errorf("cri: unknown cgroup driver %q (want %q or %q)", o.CgroupDriver, CgroupfsDriver, SystemdDriver)
	}
	if o.Runtime == "" {
		p, err := findBinary("runc")
		if err != nil {
			return fmt.Errorf("cri: no OCI runtime: %w", err)
		}
		o.Runtime = p
	}
	if o.Monitor == "" {
		p, err := findBinary("nodekit-monitor")
		if err != nil {
			return fmt.Errorf("cri: no monitor binary: %w", err)
		}
		o.Monitor = p
	}
	// The monitors run the binaries from other directories: a relative path
	// (--runtime bin/runc) is made absolute now, a bare name found in PATH.
	for _, b := range []*string{&o.Runtime, &o.Monitor} {
		p := *b
		if !strings.Contains(p, "/") {
			found, err := lookPath(p)
			if err != nil {
				return fmt.Errorf("cri: %w", err)
			}
			p = found
		}
		p, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("cri: %w", err)
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("cri: %w", err)
		}
		*b = p
	}
	return nil
}

// findBinary looks next to the running executable first, then in PATH.
func findBinary(name string) (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return lookPath(name)
}

// Images returns the server's image store.
func (s *Server) Images() *image.Store { return s.images }

// Register adds the RuntimeService and ImageService to g. Every call goes through
// one wrapper (instrument.go): a panic becomes an Internal error, and every failed
// call is logged here as well as returned to the client.
func (s *Server) Register(g *grpc.Server) {
	g.RegisterService(instrument(&runtime.RuntimeService_ServiceDesc, s.log), s)
	g.RegisterService(instrument(&runtime.ImageService_ServiceDesc, s.log), s)
}

// Listen opens the unix socket at path (replacing a stale one) with mode 0660.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if conn, err := net.Dial("unix", path); err == nil {
		conn.Close()
		return nil, fmt.Errorf("listen %s: another server is already serving this socket", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return l, nil
}

// Close stops background work. Containers keep running under their monitors.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.closeStreaming()
		s.exits.close()
		s.bg.Wait()
		s.closeErr = s.images.Close()
	})
	return s.closeErr
}

func lookPath(name string) (string, error) { return exec.LookPath(name) }
