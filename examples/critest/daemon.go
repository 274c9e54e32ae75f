package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// daemon is a private nodekit-cri: its own root, state, socket, cgroup parent, CNI
// network (bridge, subnet, IPAM directory) and registry configuration, all under dir.
type daemon struct {
	dir          string
	sock         string
	cgroupParent string // "" when the runtime picks its own
	bridge       string
	runc         string // the runc binary and root the runtime uses, for the sweep
	runcRoot     string
	log          *slog.Logger

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the exit, once exited is closed
}

// newDaemon prepares dir and its CNI configuration (bridge and subnet derived from
// the runner's pid, IPAM state under dir).
func newDaemon(dir string, log *slog.Logger) (*daemon, string, error) {
	id := os.Getpid() % 100000
	d := &daemon{
		dir:    dir,
		bridge: fmt.Sprintf("nkct%d", id),
		log:    log,
		exited: make(chan struct{}),
	}
	confDir := filepath.Join(dir, "cni", "net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return nil, "", err
	}
	conf, err := cniConfig(d.bridge, fmt.Sprintf("10.239.%d.0/24", id%250), filepath.Join(dir, "cni", "ipam"))
	if err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-critest.conflist"), conf, 0o644); err != nil {
		return nil, "", err
	}
	return d, confDir, nil
}

// startNodekit starts bin/nodekit-cri under dir with the registry configuration,
// logging to logFile, and waits until it serves.
func startNodekit(ctx context.Context, bin, dir, registries, logFile string, log *slog.Logger) (*daemon, error) {
	d, confDir, err := newDaemon(dir, log)
	if err != nil {
		return nil, err
	}
	d.sock = filepath.Join(dir, "cri.sock")
	d.cgroupParent = fmt.Sprintf("/nodekit-critest-%d", os.Getpid()%100000)
	d.runc, d.runcRoot = filepath.Join(bin, "runc"), filepath.Join(dir, "state", "runc")
	d.cmd = exec.Command(filepath.Join(bin, "nodekit-cri"),
		"--listen", d.sock,
		"--root", filepath.Join(dir, "root"),
		"--state", filepath.Join(dir, "state"),
		"--cgroup-parent", d.cgroupParent,
		"--cni-conf-dir", confDir,
		"--registry-config", registries,
		"--log-level", "debug",
	)
	return d, d.start(ctx, "nodekit-cri", logFile)
}

// startContainerd starts a private containerd (the reference runtime) under dir,
// mirroring critest's registries to the local registry at host.
func startContainerd(ctx context.Context, containerd, runc, dir, host, logFile string, log *slog.Logger) (*daemon, error) {
	d, confDir, err := newDaemon(dir, log)
	if err != nil {
		return nil, err
	}
	d.sock = filepath.Join(dir, "containerd.sock")
	d.runc, d.runcRoot = runc, filepath.Join(dir, "runc")
	var mirrors strings.Builder
	for _, reg := range upstreamRegistries {
		fmt.Fprintf(&mirrors, "  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.%q]\n    endpoint = [\"http://%s\"]\n", reg, host)
	}
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/%s"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    BinaryName = %q
    Root = %q
%s`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.sock, pauseRef, confDir, d.runc, d.runcRoot, mirrors.String())
	cfg := filepath.Join(dir, "containerd.toml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	d.cmd = exec.Command(containerd, "--config", cfg, "--log-level", "info")
	return d, d.start(ctx, "containerd", logFile)
}

// start runs d.cmd, logging to logFile, and waits until d.sock accepts connections.
func (d *daemon) start(ctx context.Context, what, logFile string) error {
	lf, err := os.Create(logFile)
	if err != nil {
		return err
	}
	d.cmd.Stdout, d.cmd.Stderr = lf, lf
	d.cmd.SysProcAttr = daemonProcAttr()
	if err := d.cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start %s: %w", what, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		lf.Close()
		close(d.exited)
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.Dial("unix", d.sock)
		if err == nil {
			c.Close()
			d.log.Info(what+" is serving", "socket", d.sock, "pid", d.cmd.Process.Pid, "log", logFile)
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("%s exited before serving (%v); see %s", what, d.err, logFile)
		case <-ctx.Done():
			d.close(context.WithoutCancel(ctx))
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.close(context.WithoutCancel(ctx))
			return fmt.Errorf("%s did not serve %s within a minute; see %s", what, d.sock, logFile)
		}
	}
}

// cniConfig is a bridge network with host-local IPAM and port mappings.
func cniConfig(bridge, subnet, ipamDir string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "nodekit-critest",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      bridge,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": subnet}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": ipamDir,
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}, "", "  ")
}

// endpoint is the CRI endpoint URL of the daemon.
func (d *daemon) endpoint() string { return "unix://" + d.sock }

// removeAll stops and removes every pod and container the run left behind, through
// CRI, as a kubelet would.
func (d *daemon) removeAll(ctx context.Context) error {
	conn, err := grpc.NewClient("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rc := runtime.NewRuntimeServiceClient(conn)
	var errs []error
	cs, err := rc.ListContainers(ctx, &runtime.ListContainersRequest{})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.GetContainers() {
		if _, err := rc.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: c.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("stop container %s: %w", c.GetId(), err))
		}
		if _, err := rc.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: c.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.GetId(), err))
		}
	}
	ps, err := rc.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list pods: %w", err))...)
	}
	for _, p := range ps.GetItems() {
		if _, err := rc.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("stop pod %s: %w", p.GetId(), err))
		}
		if _, err := rc.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("remove pod %s: %w", p.GetId(), err))
		}
	}
	if n := len(cs.GetContainers()) + len(ps.GetItems()); n > 0 {
		d.log.Info("removed what the run left", "containers", len(cs.GetContainers()), "pods", len(ps.GetItems()))
	}
	return errors.Join(errs...)
}

// stop ends the daemon: SIGTERM, then SIGKILL after 10s.
func (d *daemon) stop() {
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

// close removes everything the run left, stops the daemon and cleans up after it:
// leftover containers (runc), mounts, cgroups, the bridge, then the directory.
func (d *daemon) close(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err := d.removeAll(rctx)
	cancel()
	d.stop()
	return errors.Join(err, d.sweep(ctx), os.RemoveAll(d.dir))
}
