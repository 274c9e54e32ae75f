package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	criclient "k8s.io/cri-client/pkg"

	"github.com/nodekit-dev/nodekit/cri"
	"github.com/nodekit-dev/nodekit/cri/cni"
)

const busybox = "nodekit.local/busybox:latest"

// shim is nodekit's CRI shim run in this process and served on a unix socket,
// as nodekit-kubelet embeds it, with the clients the benchmark and the agent
// use.
type shim struct {
	dirs   runtimeDirs
	socket string
	srv    *cri.Server
	grpc   *grpc.Server
	logf   *os.File

	conn   *grpc.ClientConn
	client runtime.RuntimeServiceClient // the benchmark's own: events, verbose status, cleanup
	rt     internalapi.RuntimeService   // k8s.io/cri-client, as nodekit-kubelet: the agent's
	img    internalapi.ImageManagerService
	closed bool
}

// shimOptions configures startShim.
type shimOptions struct {
	bin          string // runc and nodekit-monitor
	image        string // busybox.tar, imported
	dir          string // root, state and socket go below
	cniConfDir   string
	cgroupParent string // for pods without one (the agent always gives one)
}

// startShim starts a shim with its own root and state under o.dir and the
// workspace's network. The workspace learns about it before anything can be
// left behind.
func startShim(ctx context.Context, w *workspace, o shimOptions) (*shim, error) {
	s := &shim{
		dirs:   runtimeDirs{Root: filepath.Join(o.dir, "root"), State: filepath.Join(o.dir, "state")},
		socket: filepath.Join(o.dir, "cri.sock"),
	}
	w.addRuntime(s.dirs.Root, s.dirs.State)
	if err := os.MkdirAll(o.dir, 0o711); err != nil {
		return nil, err
	}
	var err error
	if s.logf, err = os.Create(filepath.Join(o.dir, "shim.log")); err != nil {
		return nil, err
	}
	s.srv, err = cri.New(cri.Options{
		Root:           s.dirs.Root,
		State:          s.dirs.State,
		Runtime:        filepath.Join(o.bin, "runc"),
		Monitor:        filepath.Join(o.bin, "nodekit-monitor"),
		CgroupParent:   o.cgroupParent,
		CNIConfDir:     o.cniConfDir,
		CNIBinDirs:     cni.DefaultBinDirs,
		RegistryConfig: filepath.Join(o.dir, "registries.toml"), // none
		Logger:         slog.New(slog.NewTextHandler(s.logf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "shim"),
	})
	if err != nil {
		s.logf.Close()
		return nil, fmt.Errorf("start the shim: %w", err)
	}
	if o.image != "" {
		f, err := os.Open(o.image)
		if err != nil {
			s.srv.Close()
			return nil, err
		}
		_, err = s.srv.Images().Import(ctx, f)
		f.Close()
		if err != nil {
			s.srv.Close()
			return nil, fmt.Errorf("import %s: %w", o.image, err)
		}
	}
	l, err := cri.Listen(s.socket)
	if err != nil {
		s.srv.Close()
		return nil, err
	}
	s.grpc = grpc.NewServer(grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
	s.srv.Register(s.grpc)
	// Serve returns nil after Stop; an error before (the listener failed) shows
	// as the clients' failed calls.
	go func() { _ = s.grpc.Serve(l) }()
	w.addShim(s)
	if err := s.dial(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// dial connects the benchmark's client and the agent's (cri-client) clients.
func (s *shim) dial(ctx context.Context) error {
	endpoint := "unix://" + s.socket
	var err error
	if s.conn, err = grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return fmt.Errorf("dial %s: %w", s.socket, err)
	}
	s.client = runtime.NewRuntimeServiceClient(s.conn)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if s.rt, err = criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint(endpoint).WithConnectionTimeout(2 * time.Minute).Build(cctx); err != nil {
		return fmt.Errorf("runtime service %s: %w", endpoint, err)
	}
	if s.img, err = criclient.NewRemoteImageServiceBuilder().WithEndpoint(endpoint).WithConnectionTimeout(2 * time.Minute).Build(cctx); err != nil {
		return fmt.Errorf("image service %s: %w", endpoint, err)
	}
	return nil
}

func (s *shim) close() {
	if s.closed {
		return
	}
	s.closed = true
	if s.conn != nil {
		s.conn.Close()
	}
	s.grpc.Stop()
	s.srv.Close()
	s.logf.Close()
}

// removeAllPods stops and removes every pod sandbox (with its containers) of the
// runtime behind c.
func removeAllPods(ctx context.Context, c runtime.RuntimeServiceClient) (int, error) {
	resp, err := c.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
	if err != nil {
		return 0, fmt.Errorf("ListPodSandbox: %w", err)
	}
	var n int
	var errs []error
	for _, sb := range resp.GetItems() {
		if _, err := c.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("StopPodSandbox %.12s: %w", sb.Id, err))
			continue
		}
		if _, err := c.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("RemovePodSandbox %.12s: %w", sb.Id, err))
			continue
		}
		n++
	}
	// Containers of no sandbox (there should be none).
	cs, err := c.ListContainers(ctx, &runtime.ListContainersRequest{})
	if err == nil {
		for _, ct := range cs.GetContainers() {
			if _, err := c.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: ct.Id}); err != nil {
				errs = append(errs, fmt.Errorf("StopContainer %.12s: %w", ct.Id, err))
				continue
			}
			if _, err := c.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: ct.Id}); err != nil {
				errs = append(errs, fmt.Errorf("RemoveContainer %.12s: %w", ct.Id, err))
			}
		}
	}
	return n, errors.Join(errs...)
}

// recoverAndRemove starts a shim on a runtime's directories whose own server is
// gone (it recovers the pods from the state dir) and removes every pod through
// CRI.
func recoverAndRemove(r runtimeDirs, bin, cniConfDir, socket, logPath string) (int, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	srv, err := cri.New(cri.Options{
		Root:       r.Root,
		State:      r.State,
		Runtime:    filepath.Join(bin, "runc"),
		Monitor:    filepath.Join(bin, "nodekit-monitor"),
		CNIConfDir: cniConfDir,
		CNIBinDirs: cni.DefaultBinDirs,
		Logger:     slog.New(slog.NewTextHandler(logf, nil)),
	})
	if err != nil {
		return 0, err
	}
	defer srv.Close()
	l, err := cri.Listen(socket)
	if err != nil {
		return 0, err
	}
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(l) }() // as in startShim
	defer g.Stop()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return removeAllPods(ctx, runtime.NewRuntimeServiceClient(conn))
}
