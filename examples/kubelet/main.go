// Command nodekit-kubelet is nodekit's thin kubelet: the agent (package agent)
// wired to a container runtime over the CRI — by default nodekit's own shim,
// embedded in this process and served on a unix socket under --root-dir, or any
// CRI runtime (containerd, CRI-O) with --container-runtime-endpoint. It runs the
// static pods of --pod-manifest-path. Its commands (package agent/cli) are
// kubectl's verbs against the agent running on this machine:
//
//	nodekit-kubelet [flags]                          run the agent
//	nodekit-kubelet get pods [-o wide|yaml|json] [-w] the pods (NAME READY STATUS RESTARTS AGE)
//	nodekit-kubelet get node [-o yaml]               the node: conditions, capacity, allocatable, images
//	nodekit-kubelet describe pod NAME                containers, states, probes, volumes, events, timeline
//	nodekit-kubelet logs POD [-c C] [-f] [--previous]
//	nodekit-kubelet exec -it POD -- sh
//	nodekit-kubelet top pods                         CPU and memory
//	nodekit-kubelet import [--root-dir] FILE...      load image archives into the embedded runtime
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
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/agent/cli"
	"github.com/nodekit-dev/nodekit/cri"
	"github.com/nodekit-dev/nodekit/cri/image"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := cli.Main(ctx, newCommand(), os.Args[1:])
	stop()
	os.Exit(code)
}

// newCommand is the command line: the agent with the kubelet's flags, the
// embedded runtime's and nodekit's own, the commands of package cli, and
// import.
func newCommand() *cobra.Command {
	kubelet := flag.NewFlagSet("kubelet", flag.ContinueOnError)
	kf := agent.RegisterFlags(kubelet)
	nodekit := flag.NewFlagSet("nodekit", flag.ContinueOnError)
	var d daemon
	nodekit.StringVar(&d.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	nodekit.BoolVar(&d.stopPods, "stop-pods-on-exit", false, "stop every pod gracefully before exiting (the kubelet leaves them running for the next start)")
	nodekit.BoolVar(&d.genericPLEG, "generic-pleg", false, "relist the runtime every second instead of following its container events")
	embedded := flag.NewFlagSet("runtime", flag.ContinueOnError)
	embedded.StringVar(&d.runtimeBin, "runtime", "", "the OCI runtime binary (default: runc next to this binary, else in PATH)")
	embedded.StringVar(&d.monitorBin, "monitor", "", "the nodekit-monitor binary (default: next to this binary, else in PATH)")
	embedded.StringVar(&d.stateDir, "runtime-state-dir", "", "its state directory (default /run/nodekit-kubelet/runtime with the default --root-dir, else <root-dir>/runtime-state)")
	embedded.StringVar(&d.cniConfDir, "cni-conf-dir", "/etc/cni/net.d", "CNI network configurations")
	embedded.StringVar(&d.cniBinDir, "cni-bin-dir", "/usr/lib/cni:/opt/cni/bin", "CNI plugin directories")
	embedded.StringVar(&d.registryConfig, "registry-config", "/etc/nodekit/registries.toml", "registry mirrors")
	cmd := cli.NewCommand(cli.Options{
		Version: cri.Version,
		Flags: []cli.FlagGroup{
			{Title: "Kubelet flags", Flags: kubelet},
			{Title: "nodekit flags", Flags: nodekit},
			{Title: "Embedded runtime flags (without --container-runtime-endpoint)", Flags: embedded},
		},
		Run: func(ctx context.Context) error {
			cfg, err := kf.Load()
			if err != nil {
				return err
			}
			return d.run(ctx, cfg)
		},
	})
	cmd.AddCommand(importCommand())
	return cmd
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

// daemon is the agent with its runtime, configured by the flags that are
// not the kubelet's.
type daemon struct {
	logLevel, runtimeBin, monitorBin, stateDir string
	cniConfDir, cniBinDir, registryConfig      string
	stopPods, genericPLEG                      bool
}

func (d *daemon) run(ctx context.Context, cfg *agent.Config) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(d.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	klog.SetSlogLogger(log.With("component", "cri-client"))

	if err := os.MkdirAll(cfg.RootDir, 0o711); err != nil {
		return err
	}

	if cfg.RuntimeEndpoint == "" {
		root, state, socket := embeddedDirs(cfg.RootDir)
		if d.stateDir != "" {
			state = d.stateDir
		}
		shim, err := cri.New(cri.Options{
			Root:           root,
			State:          state,
			Runtime:        d.runtimeBin,
			Monitor:        d.monitorBin,
			CgroupDriver:   cfg.Kubelet.CgroupDriver,
			CNIConfDir:     d.cniConfDir,
			CNIBinDirs:     filepath.SplitList(d.cniBinDir),
			RegistryConfig: d.registryConfig,
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
		go func() {
			// nil after Stop; an error before leaves the agent's CRI calls failing.
			if err := g.Serve(l); err != nil {
				log.Error("embedded runtime: serving CRI", "socket", socket, "error", err)
			}
		}()
		defer g.Stop()
		cfg.RuntimeEndpoint = "unix://" + socket
		log.Info("embedded runtime serving CRI", "socket", socket, "root", root)
	}
	// The agent dials cfg.RuntimeEndpoint, the embedded runtime's or the one
	// of --container-runtime-endpoint.
	a, err := agent.New(agent.Options{
		Config:             cfg,
		Logger:             log,
		DisableEventedPLEG: d.genericPLEG,
		StopPodsOnExit:     d.stopPods,
	})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// importCommand loads image archives into the embedded runtime's store; it
// works whether the agent runs or not (the store is locked while it writes).
func importCommand() *cobra.Command {
	var rootDir string
	cmd := &cobra.Command{
		Use:   "import [--root-dir DIR] FILE...",
		Short: "Load image archives (OCI or docker save) into the embedded runtime",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			root, _, _ := embeddedDirs(rootDir)
			store, err := image.New(image.Options{Root: filepath.Join(root, "images")})
			if err != nil {
				return err
			}
			defer store.Close()
			var errs []error
			for _, file := range files {
				f, err := os.Open(file)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				imgs, err := store.Import(cmd.Context(), f)
				f.Close()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", file, err))
					continue
				}
				for _, img := range imgs {
					fmt.Fprintf(cmd.OutOrStdout(), "imported %s from %s\n", strings.Join(img.RepoTags, ", "), file)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVar(&rootDir, "root-dir", agent.DefaultRootDir, "the agent's --root-dir (the embedded runtime's image store is there)")
	return cmd
}
