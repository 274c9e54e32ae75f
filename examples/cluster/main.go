// Command cluster is `make run-cluster`: a Kubernetes control plane on
// 127.0.0.1 (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// built by `make controlplane`) and two nodekit-kubelet nodes on this machine,
// each with its own root directory, ports, cgroup root and node credentials
// (the Node authorizer and NodeRestriction apply). It deploys the sample of
// examples/cluster, prints the nodes, the pods and a kubeconfig for kubectl,
// and runs until Ctrl-C, when it stops the nodes (their pods stopped
// gracefully) and the control plane and removes what it made.
//
//	cluster [-bin DIR] [-images DIR] [-dir DIR] [-nodes N] [-sample FILE] [-exit-when-ready]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nodekit-dev/nodekit/internal/controlplane"
)

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory of nodekit-kubelet (and its runc and nodekit-monitor)")
	flag.StringVar(&o.images, "images", "_output/images", "directory of image archives (*.tar) imported into each node")
	flag.StringVar(&o.controlPlane, "controlplane-dir", os.Getenv(controlplane.DirEnv), "where `make controlplane` built the control plane (its bin/)")
	flag.StringVar(&o.dir, "dir", "/var/lib/nodekit-cluster", "directory of the nodes' root directories, logs and the kubeconfig (emptied at exit)")
	flag.IntVar(&o.nodes, "nodes", 2, "how many nodes")
	flag.StringVar(&o.cgroupPrefix, "cgroup-prefix", "/nodekit-cluster", "each node's cgroup root is <prefix>-<node name>")
	flag.StringVar(&o.sample, "sample", "examples/cluster/web.yaml", "manifests applied once the nodes are Ready (empty: none)")
	flag.BoolVar(&o.exitWhenReady, "exit-when-ready", false, "stop once the nodes are Ready and the sample is available (for CI)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "cluster: run as root (sudo make run-cluster): the nodes run containers")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o.out = os.Stdout
	o.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := start(ctx, o)
	if err == nil {
		err = c.show(ctx)
		if err == nil && !o.exitWhenReady {
			fmt.Fprintln(o.out, "\nRunning until Ctrl-C.")
			<-ctx.Done()
		}
	}
	if c != nil {
		fmt.Fprintln(o.out, "\n== stopping the nodes (their pods gracefully) and the control plane")
		err = errors.Join(err, c.Close())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// options are the cluster's settings.
type options struct {
	bin, images, controlPlane, dir, sample string
	// cgroupPrefix starts each node's cgroup root (<prefix>-<node>);
	// cniConfDir and cniBinDir, when set, are the nodes' networks (default:
	// nodekit-kubelet's).
	cgroupPrefix, cniConfDir, cniBinDir string
	nodes                               int
	// nodeMonitorGrace: the controller manager's --node-monitor-grace-period
	// (0: its default, 50 s).
	nodeMonitorGrace time.Duration
	exitWhenReady    bool
	out              io.Writer
	log              *slog.Logger
}

func (o options) kubeletBin() string { return filepath.Join(o.bin, "nodekit-kubelet") }
