// Command nodekit-cri is nodekit's CRI shim as a standalone daemon: the Kubernetes
// Container Runtime Interface (v1) on a unix socket, running pods with runc.
//
//	nodekit-cri [flags]                 serve CRI on --listen
//	nodekit-cri import [flags] FILE...  load OCI or docker image archives into the store
//
// Point crictl at it with `crictl --runtime-endpoint unix:///run/nodekit/cri.sock`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri"
	"github.com/nodekit-dev/nodekit/cri/image"
)

type config struct {
	listen, root, state, runtime, monitor, cgroupDriver, cgroupParent, logLevel string
	cniConfDir, cniBinDir, streamAddress, registryConfig                        string
}

func flags(name string) (*flag.FlagSet, *config) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	fs.StringVar(&c.listen, "listen", "/run/nodekit/cri.sock", "unix socket to serve CRI on")
	fs.StringVar(&c.root, "root", "/var/lib/nodekit", "directory for persistent data (images, writable layers)")
	fs.StringVar(&c.state, "state", "/run/nodekit", "directory for runtime state (records, bundles, mounts)")
	fs.StringVar(&c.runtime, "runtime", "", "OCI runtime binary, runc or crun (default: runc next to this binary, else in PATH)")
	fs.StringVar(&c.monitor, "monitor", "", "nodekit-monitor binary (default: next to this binary, else in PATH)")
	fs.StringVar(&c.cgroupDriver, "cgroup-driver", cri.CgroupfsDriver, "cgroup driver: cgroupfs or systemd")
	fs.StringVar(&c.cgroupParent, "cgroup-parent", "", "cgroup parent for pods that name none (default /nodekit, or nodekit.slice with systemd)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.cniConfDir, "cni-conf-dir", "/etc/cni/net.d", "directory of CNI network configurations")
	fs.StringVar(&c.cniBinDir, "cni-bin-dir", "/usr/lib/cni:/opt/cni/bin", "colon-separated directories of CNI plugins")
	fs.StringVar(&c.streamAddress, "stream-address", "127.0.0.1:0", "address of the streaming server (exec, attach, port-forward)")
	fs.StringVar(&c.registryConfig, "registry-config", "/etc/nodekit/registries.toml", "registry mirrors configuration (a missing file means none)")
	return fs, c
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "import" {
		fs, c := flags("nodekit-cri import")
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "usage: nodekit-cri import [flags] FILE...\n\nLoads OCI image-layout or docker archives into the image store under --root.\nSafe while the daemon runs: the store is locked per change and the daemon sees new images at its next call.\n\n")
			fs.PrintDefaults()
		}
		_ = fs.Parse(os.Args[2:]) // ExitOnError: it exits on a bad flag
		if fs.NArg() == 0 {
			fs.Usage()
			os.Exit(2)
		}
		if err := runImport(c, fs.Args()); err != nil {
			fmt.Fprintln(os.Stderr, "nodekit-cri import:", err)
			os.Exit(1)
		}
		return
	}
	fs, c := flags("nodekit-cri")
	_ = fs.Parse(os.Args[1:]) // ExitOnError: it exits on a bad flag
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "nodekit-cri: unknown command %q (commands: import)\n", fs.Arg(0))
		os.Exit(2)
	}
	if err := serve(c); err != nil {
		fmt.Fprintln(os.Stderr, "nodekit-cri:", err)
		os.Exit(1)
	}
}

func logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func serve(c *config) error {
	log, err := logger(c.logLevel)
	if err != nil {
		return err
	}
	srv, err := cri.New(cri.Options{
		Root:           c.root,
		State:          c.state,
		Runtime:        c.runtime,
		Monitor:        c.monitor,
		CgroupDriver:   c.cgroupDriver,
		CgroupParent:   c.cgroupParent,
		CNIConfDir:     c.cniConfDir,
		CNIBinDirs:     filepath.SplitList(c.cniBinDir),
		StreamAddress:  c.streamAddress,
		RegistryConfig: c.registryConfig,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	l, err := cri.Listen(c.listen)
	if err != nil {
		return err
	}
	g := grpc.NewServer(grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
	srv.Register(g)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(l) }()
	log.Info("serving CRI", "socket", c.listen, "root", c.root, "state", c.state)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down; containers keep running under their monitors")
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		g.Stop()
	}
	return nil
}

func runImport(c *config, files []string) error {
	log, err := logger(c.logLevel)
	if err != nil {
		return err
	}
	store, err := image.New(image.Options{Root: filepath.Join(c.root, "images"), Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var errs []error
	var ids []string
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		imgs, err := store.Import(ctx, f)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		for _, img := range imgs {
			name := img.ID
			if len(img.RepoTags) > 0 {
				name = img.RepoTags[0]
			}
			fmt.Printf("imported %s (%s) from %s\n", name, img.ID, file)
			ids = append(ids, img.ID)
		}
	}
	if len(ids) > 0 {
		if err := checkDaemonSees(ctx, c, ids); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkDaemonSees asks a daemon serving on --listen, if one does, for the images
// just imported: a daemon with another --root would not see them, and saying so
// beats a later "image not found".
func checkDaemonSees(ctx context.Context, c *config, ids []string) error {
	if _, err := os.Stat(c.listen); err != nil {
		return nil // no daemon: it will find the images when it starts with this --root
	}
	conn, err := grpc.NewClient("unix://"+c.listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	images := runtime.NewImageServiceClient(conn)
	for _, id := range ids {
		resp, err := images.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: id}})
		if err != nil {
			if status.Code(err) == codes.Unavailable {
				return nil // a stale socket file: no daemon
			}
			return fmt.Errorf("ask the daemon on %s for %s: %w", c.listen, id, err)
		}
		if resp.GetImage() == nil {
			return fmt.Errorf("the daemon on %s does not see %s: it runs with another --root than %s (pass the daemon's --root to import)", c.listen, id, c.root)
		}
	}
	fmt.Printf("the daemon on %s sees the new images now\n", c.listen)
	return nil
}
