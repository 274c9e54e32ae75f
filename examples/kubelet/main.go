// Command nodekit-kubelet is nodekit's thin kubelet: the agent (package agent)
// wired to a container runtime over the CRI — by default nodekit's own shim,
// embedded in this process and served on a unix socket under --root-dir, or any
// CRI runtime (containerd, CRI-O) with --container-runtime-endpoint. It runs the
// static pods of --pod-manifest-path.
//
//	nodekit-kubelet [flags]                    run the agent
//	nodekit-kubelet get pods [-w] [--root-dir]  print the pods (NAME READY STATUS RESTARTS AGE)
//	nodekit-kubelet get node [-o yaml]         print the node: status, conditions, capacity, allocatable
//	nodekit-kubelet import [--root-dir] FILE... load image archives into the embedded runtime
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/agent/server"
	"github.com/nodekit-dev/nodekit/cri"
	"github.com/nodekit-dev/nodekit/cri/image"
)

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) >= 2 && args[0] == "get" && (args[1] == "pods" || args[1] == "pod" || args[1] == "po"):
		err = getPods(args[2:])
	case len(args) >= 2 && args[0] == "get" && (args[1] == "node" || args[1] == "nodes" || args[1] == "no"):
		err = getNode(args[2:])
	case len(args) >= 1 && args[0] == "import":
		err = importImages(args[1:])
	default:
		err = run(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodekit-kubelet:", err)
		os.Exit(1)
	}
}

// embeddedDirs names the directories of the embedded runtime: its data under the
// root dir, its state under /run for the default root dir and under the root dir
// otherwise (so two agents with different root dirs never share a runtime).
func embeddedDirs(rootDir string) (root, state, socket string) {
	state = filepath.Join(rootDir, "runtime-state")
	if filepath.Clean(rootDir) == agent.DefaultRootDir {
		state = "/run/nodekit-kubelet/runtime"
	}
	return filepath.Join(rootDir, "runtime"), state, filepath.Join(rootDir, "runtime.sock")
}

func run(args []string) error {
	fs := flag.NewFlagSet("nodekit-kubelet", flag.ExitOnError)
	kf := agent.RegisterFlags(fs)
	runtimeBin := fs.String("runtime", "", "embedded runtime: the OCI runtime binary (default: runc next to this binary, else in PATH)")
	monitorBin := fs.String("monitor", "", "embedded runtime: the nodekit-monitor binary (default: next to this binary, else in PATH)")
	stateDir := fs.String("runtime-state-dir", "", "embedded runtime: its state directory (default /run/nodekit-kubelet/runtime with the default --root-dir, else <root-dir>/runtime-state)")
	cniConfDir := fs.String("cni-conf-dir", "/etc/cni/net.d", "embedded runtime: CNI network configurations")
	cniBinDir := fs.String("cni-bin-dir", "/usr/lib/cni:/opt/cni/bin", "embedded runtime: CNI plugin directories")
	registryConfig := fs.String("registry-config", "/etc/nodekit/registries.toml", "embedded runtime: registry mirrors")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	stopPods := fs.Bool("stop-pods-on-exit", false, "stop every pod gracefully before exiting (the kubelet leaves them running for the next start)")
	genericPLEG := fs.Bool("generic-pleg", false, "relist the runtime every second instead of following its container events")
	fs.Parse(args)
	if fs.NArg() > 0 {
		return fmt.Errorf("unknown command %q (commands: get pods, get node, import)", fs.Arg(0))
	}
	cfg, err := kf.Load()
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	klog.SetSlogLogger(log.With("component", "cri-client"))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(cfg.RootDir, 0o711); err != nil {
		return err
	}

	endpoint := cfg.RuntimeEndpoint
	if endpoint == "" {
		root, state, socket := embeddedDirs(cfg.RootDir)
		if *stateDir != "" {
			state = *stateDir
		}
		shim, err := cri.New(cri.Options{
			Root:           root,
			State:          state,
			Runtime:        *runtimeBin,
			Monitor:        *monitorBin,
			CgroupDriver:   cfg.Kubelet.CgroupDriver,
			CNIConfDir:     *cniConfDir,
			CNIBinDirs:     filepath.SplitList(*cniBinDir),
			RegistryConfig: *registryConfig,
			Logger:         log.With("component", "runtime"),
		})
		if err != nil {
			return fmt.Errorf("embedded runtime: %w", err)
		}
		defer shim.Close()
		l, err := cri.Listen(socket)
		if err != nil {
			return fmt.Errorf("embedded runtime: %w", err)
		}
		g := grpc.NewServer(grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
		shim.Register(g)
		go g.Serve(l)
		defer g.Stop()
		endpoint = "unix://" + socket
		log.Info("embedded runtime serving CRI", "socket", socket, "root", root)
	}
	rt, img, err := connect(ctx, endpoint, cfg.Kubelet.RuntimeRequestTimeout.Duration)
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Options{
		Config:             cfg,
		Runtime:            rt,
		Images:             img,
		Logger:             log,
		DisableEventedPLEG: *genericPLEG,
		StopPodsOnExit:     *stopPods,
	})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func connect(ctx context.Context, endpoint string, timeout time.Duration) (internalapi.RuntimeService, internalapi.ImageManagerService, error) {
	if !strings.Contains(endpoint, "://") {
		endpoint = "unix://" + endpoint
	}
	rt, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(endpoint).WithConnectionTimeout(timeout).Build(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("container runtime %s: %w", endpoint, err)
	}
	img, err := remote.NewRemoteImageServiceBuilder().WithEndpoint(endpoint).WithConnectionTimeout(timeout).Build(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("image service %s: %w", endpoint, err)
	}
	return rt, img, nil
}

func getPods(args []string) error {
	fs := flag.NewFlagSet("nodekit-kubelet get pods", flag.ExitOnError)
	rootDir := fs.String("root-dir", agent.DefaultRootDir, "the agent's --root-dir (its local API socket is there)")
	watch := fs.Bool("w", false, "refresh the table every 2 seconds until interrupted")
	fs.BoolVar(watch, "watch", false, "same as -w")
	fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sock := agent.LocalSocket(*rootDir)
	for {
		list, err := server.ListPods(ctx, sock)
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return fmt.Errorf("%w (is nodekit-kubelet running with --root-dir %s?)", err, *rootDir)
		}
		if *watch {
			fmt.Print("\033[H\033[2J")
			fmt.Printf("nodekit-kubelet pods at %s (Ctrl-C to stop watching)\n\n", time.Now().Format(time.TimeOnly))
		}
		if err := server.PrintPods(os.Stdout, list.Items, time.Now()); err != nil {
			return err
		}
		if !*watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

func getNode(args []string) error {
	fs := flag.NewFlagSet("nodekit-kubelet get node", flag.ExitOnError)
	rootDir := fs.String("root-dir", agent.DefaultRootDir, "the agent's --root-dir (its local API socket is there)")
	output := fs.String("o", "", "output format: yaml or json (default: a table with conditions, capacity and allocatable)")
	fs.StringVar(output, "output", "", "same as -o")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := server.GetNode(ctx, agent.LocalSocket(*rootDir))
	if err != nil {
		return fmt.Errorf("%w (is nodekit-kubelet running with --root-dir %s?)", err, *rootDir)
	}
	switch *output {
	case "":
		return server.PrintNode(os.Stdout, n, time.Now())
	case "yaml":
		data, err := yaml.Marshal(n)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(data)
		return err
	case "json":
		data, err := json.MarshalIndent(n, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Println(string(data))
		return err
	}
	return fmt.Errorf("-o %q: unknown output format (want yaml or json)", *output)
}

func importImages(args []string) error {
	fs := flag.NewFlagSet("nodekit-kubelet import", flag.ExitOnError)
	rootDir := fs.String("root-dir", agent.DefaultRootDir, "the agent's --root-dir (the embedded runtime's image store is there)")
	fs.Parse(args)
	if fs.NArg() == 0 {
		return errors.New("no image archive given (usage: nodekit-kubelet import [--root-dir DIR] FILE ...)")
	}
	root, _, _ := embeddedDirs(*rootDir)
	store, err := image.New(image.Options{Root: filepath.Join(root, "images")})
	if err != nil {
		return err
	}
	defer store.Close()
	var errs []error
	for _, file := range fs.Args() {
		f, err := os.Open(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		imgs, err := store.Import(context.Background(), f)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		for _, img := range imgs {
			fmt.Printf("imported %s from %s\n", strings.Join(img.RepoTags, ", "), file)
		}
	}
	return errors.Join(errs...)
}
