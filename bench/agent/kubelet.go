package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/bench/internal/daemon"
	"github.com/nodekit-dev/nodekit/cri/cni"
)

// kubeletOptions is one nodekit-kubelet subprocess with its embedded runtime
// (parts b and exitcost).
type kubeletOptions struct {
	name      string // in messages: "idle, evented PLEG"
	binary    string // the nodekit-kubelet executable
	bin       string // runc and nodekit-monitor
	image     string // busybox.tar, imported before the start
	root      string // --root-dir: short (the runtime socket lives in it)
	manifests string
	cgroup    string // cgroupRoot, under the workspace's cgroup
	// config: more KubeletConfiguration lines ("syncFrequency: 10m\n").
	config  string
	generic bool // --generic-pleg
}

// kubelet is a nodekit-kubelet the benchmark started.
type kubelet struct {
	name   string
	d      *daemon.Daemon
	root   string
	log    string // its stdout and stderr (the agent's slog text lines)
	sock   string // the local API: /pods, /metrics
	rtSock string // the embedded runtime's CRI socket
}

// startKubelet imports the image into a new root dir and starts nodekit-kubelet
// on it. The workspace knows the kubelet and its runtime before anything can be
// left behind.
func startKubelet(ctx context.Context, w *workspace, o kubeletOptions) (*kubelet, error) {
	net, err := w.network()
	if err != nil {
		return nil, err
	}
	w.addRuntime(filepath.Join(o.root, "runtime"), kubeletStateDir)
	if err := os.MkdirAll(o.root, 0o711); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, o.binary, "import", "--root-dir", o.root, o.image).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nodekit-kubelet import: %w: %s", err, out)
	}
	config := filepath.Join(o.root, "kubelet.yaml")
	conf := "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupRoot: " + o.cgroup + "\n" + o.config
	if err := os.WriteFile(config, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	healthz, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{o.binary,
		"--config", config,
		"--root-dir", o.root,
		"--pod-manifest-path", o.manifests,
		"--pod-logs-dir", filepath.Join(o.root, "logs"),
		"--hostname-override", nodeName,
		"--node-ip", "127.0.0.1",
		"--address", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--healthz-port", strconv.Itoa(healthz),
		"--stop-pods-on-exit",
		"--runtime", filepath.Join(o.bin, "runc"),
		"--monitor", filepath.Join(o.bin, "nodekit-monitor"),
		"--cni-conf-dir", net.confDir,
		"--cni-bin-dir", strings.Join(cni.DefaultBinDirs, ":"),
		"--registry-config", filepath.Join(o.root, "registries.toml"), // none
		"--log-level", "info",
	}
	if o.generic {
		args = append(args, "--generic-pleg")
	}
	k := &kubelet{name: o.name, root: o.root, log: filepath.Join(o.root, "kubelet.log"),
		sock: agent.LocalSocket(o.root), rtSock: filepath.Join(o.root, "runtime.sock")}
	if k.d, err = daemon.Start("nodekit-kubelet ("+o.name+")", k.log, args...); err != nil {
		return nil, err
	}
	w.addDaemon(k.d)
	return k, nil
}

// stop stops the kubelet (SIGTERM: it stops its pods) unless it has exited,
// and says how long that took ("" when it had exited); an error when it left
// pods in the runtime's state dir.
func (k *kubelet) stop() (string, error) {
	var took string
	if !k.d.Exited() {
		fmt.Printf("%s: stopping nodekit-kubelet and its pods\n", k.name)
		t := time.Now()
		msg := stopMessage(k.d.Stop(3 * time.Minute))
		took = time.Since(t).Round(time.Millisecond).String()
		fmt.Printf("%s: %s\n", k.name, msg)
	}
	if left := objectsIn(kubeletStateDir); left != "" {
		return took, fmt.Errorf("nodekit-kubelet left %s in %s after it stopped with --stop-pods-on-exit: pods %s (see its log)",
			left, kubeletStateDir, strings.Join(sandboxPods(kubeletStateDir), ", "))
	}
	return took, nil
}
