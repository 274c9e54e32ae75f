package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	criclient "k8s.io/cri-client/pkg"

	"github.com/nodekit-dev/nodekit/bench/internal/daemon"
	"github.com/nodekit-dev/nodekit/bench/internal/leftover"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/internal/cmdline"
	"github.com/nodekit-dev/nodekit/internal/containerdtest"
	"github.com/nodekit-dev/nodekit/internal/controlplane"
)

// The agents the benchmark compares, one at a time.
const (
	agentNodekit    = "nodekit"             // nodekit-kubelet with its embedded shim
	agentContainerd = "kubelet-containerd"  // the upstream kubelet on Debian's containerd
	agentNodekitCRI = "kubelet-nodekit-cri" // the upstream kubelet on nodekit-cri
)

var allAgents = []string{agentNodekit, agentContainerd, agentNodekitCRI}

// agentLabel is how the tables name an agent.
func agentLabel(kind string) string {
	switch kind {
	case agentNodekit:
		return "nodekit-kubelet"
	case agentContainerd:
		return "kubelet + containerd"
	case agentNodekitCRI:
		return "kubelet + nodekit-cri"
	}
	return kind
}

// kubeletStateDir is where nodekit-kubelet's embedded runtime keeps its state
// whatever --root-dir says, shared by every nodekit-kubelet of the machine
// (see bench/agent).
const kubeletStateDir = "/run/nodekit-kubelet/runtime"

// node is one agent running as a node of the control plane.
type node struct {
	kind, name string
	agent      *daemon.Daemon // nodekit-kubelet or kubelet
	// runtime is the upstream kubelet's: nodekit-cri (a daemon) or containerd.
	runtimeName string
	runtimePID  int
	runtimeDone func() error // nil while it runs
	// helpers lists the per-pod processes of the runtime: nodekit-monitor
	// (nodekit-kubelet's children, or nodekit-cri's), containerd-shim-runc-v2.
	helperName string
	helpers    func() ([]int, error)
	version    string
	// stop stops the node: the agent (after its pods are gone from the API),
	// then what is left in the runtime, then the runtime.
	stop func(say func(string, ...any))
}

// alive reports an agent or runtime that exited.
func (n *node) alive() error {
	if n.agent.Exited() {
		return fmt.Errorf("%s exited: %v\n%s", agentLabel(n.kind), n.agent.Err(), n.agent.LogTail(30))
	}
	if n.runtimeDone != nil {
		if err := n.runtimeDone(); err != nil {
			return err
		}
	}
	return nil
}

// ports returns two TCP ports free on 127.0.0.1 right now.
func ports() (int, int, error) {
	var out [2]int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		ls = append(ls, l)
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out[0], out[1], nil
}

// startNodekit starts nodekit-kubelet (agent and embedded shim in one
// process) as node name, as examples/cluster does.
func startNodekit(ctx context.Context, w *workspace, o options, cp *controlplane.ControlPlane, net *network, name string) (*node, error) {
	if err := checkKubeletState(); err != nil {
		return nil, err
	}
	kubelet := filepath.Join(o.bin, "nodekit-kubelet")
	root := w.path("nk")
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, err
	}
	imp := exec.CommandContext(ctx, kubelet, "import", "--root-dir", root, filepath.Join(o.images, "busybox.tar"), filepath.Join(o.images, "pause.tar"))
	if out, err := imp.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nodekit-kubelet import: %w: %s", err, out)
	}
	kubeconfig, err := cp.WriteNodeKubeconfig(name)
	if err != nil {
		return nil, err
	}
	cert, key, err := cp.WriteKubeletServingCert(name)
	if err != nil {
		return nil, err
	}
	cgroupRoot, err := w.makeCgroup("nk")
	if err != nil {
		return nil, err
	}
	port, healthz, err := ports()
	if err != nil {
		return nil, err
	}
	args := []string{kubelet,
		"--root-dir", root,
		"--hostname-override", name,
		"--node-ip", "127.0.0.1",
		"--kubeconfig", kubeconfig,
		"--address", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--healthz-port", strconv.Itoa(healthz),
		"--pod-logs-dir", filepath.Join(root, "logs"),
		"--cgroup-root", cgroupRoot,
		"--tls-cert-file", cert,
		"--tls-private-key-file", key,
		"--client-ca-file", cp.CAFile,
		"--authentication-token-webhook",
		"--authorization-mode", "Webhook",
		"--stop-pods-on-exit",
		"--runtime", filepath.Join(o.bin, "runc"),
		"--monitor", filepath.Join(o.bin, "nodekit-monitor"),
		"--cni-conf-dir", net.confDir,
		"--cni-bin-dir", net.binDir,
		"--registry-config", filepath.Join(root, "registries.toml"), // none: no registry is configured
	}
	d, err := daemon.Start("nodekit-kubelet", filepath.Join(root, "kubelet.log"), args...)
	if err != nil {
		return nil, err
	}
	n := &node{kind: agentNodekit, name: name, agent: d, helperName: "nodekit-monitor", version: versionOf(kubelet, "--version")}
	n.helpers = func() ([]int, error) { return childrenNamed(d.PID(), "nodekit-monitor") }
	n.stop = func(say func(string, ...any)) {
		if !d.Exited() {
			s := d.Stop(3 * time.Minute)
			say("%s (took %s)", s, s.Took.Round(time.Millisecond))
		}
		if left := objectsIn(kubeletStateDir); left != "" {
			say("nodekit-kubelet left %s in %s after it stopped with --stop-pods-on-exit", left, kubeletStateDir)
		}
	}
	return n, nil
}

// checkKubeletState makes sure no other nodekit-kubelet with the embedded
// runtime runs and its shared state directory is empty.
func checkKubeletState() error {
	procs, err := procfs.List()
	if err != nil {
		return err
	}
	for _, p := range procs {
		if len(p.Args) > 1 && filepath.Base(p.Args[0]) == "nodekit-kubelet" && p.Args[1] != "import" && p.Args[1] != "get" &&
			cmdline.FlagValue(p.Args, "container-runtime-endpoint") == "" {
			return fmt.Errorf("another nodekit-kubelet with the embedded runtime runs (pid %d); its runtime state %s is shared by every nodekit-kubelet: stop it first", p.PID, kubeletStateDir)
		}
	}
	if left := objectsIn(kubeletStateDir); left != "" {
		return fmt.Errorf("%s holds %s of an earlier nodekit-kubelet; the benchmark needs it empty", kubeletStateDir, left)
	}
	return nil
}

// childrenNamed lists the children of pid whose command is name.
func childrenNamed(pid int, name string) ([]int, error) {
	procs, err := procfs.List()
	if err != nil {
		return nil, err
	}
	var out []int
	for _, p := range procs {
		if p.PPID == pid && len(p.Args) > 0 && filepath.Base(p.Args[0]) == name {
			out = append(out, p.PID)
		}
	}
	return out, nil
}

// startUpstream starts a runtime (containerd or nodekit-cri) and the upstream
// kubelet on it as node name.
func startUpstream(ctx context.Context, w *workspace, o options, cp *controlplane.ControlPlane, net *network, kind, name string) (*node, error) {
	short := map[string]string{agentContainerd: "kc", agentNodekitCRI: "kn"}[kind]
	root := w.path(short)
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, err
	}
	n := &node{kind: kind, name: name}
	var socket string
	var stopRuntime func(say func(string, ...any))
	switch kind {
	case agentContainerd:
		cfg := containerdtest.Config{Dir: filepath.Join(root, "ctd"), Runc: filepath.Join(o.bin, "runc"),
			CNIConfDir: net.confDir, CNIBinDir: net.binDir, SandboxImage: containerdtest.DefaultSandboxImage}
		c, err := containerdtest.Start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		stopRuntime = func(say func(string, ...any)) {
			for _, f := range c.Cleanup() {
				say("containerd: %s", f)
			}
			say("stopped containerd (pid %d)", c.PID())
		}
		if err := c.Import(ctx, filepath.Join(o.images, "busybox.tar"), filepath.Join(o.images, "pause.tar")); err != nil {
			stopRuntime(func(string, ...any) {})
			return nil, err
		}
		socket = c.Address()
		n.runtimeName, n.runtimePID = "containerd", c.PID()
		n.runtimeDone = func() error {
			if c.Exited() {
				return fmt.Errorf("containerd exited\n%s", c.LogTail(30))
			}
			return nil
		}
		n.helperName = "containerd-shim-runc-v2"
		n.helpers = func() ([]int, error) {
			shims, err := containerdtest.Shims(socket)
			pids := make([]int, len(shims))
			for i, s := range shims {
				pids[i] = s.PID
			}
			return pids, err
		}
		n.version = "containerd " + versionOf(containerdtest.Binary, "--version")
	case agentNodekitCRI:
		cri := filepath.Join(o.bin, "nodekit-cri")
		criRoot, state := filepath.Join(root, "cri"), filepath.Join(root, "cri-state")
		for _, d := range []string{criRoot, state} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
		}
		imp := exec.CommandContext(ctx, cri, "import", "--root", criRoot, filepath.Join(o.images, "busybox.tar"), filepath.Join(o.images, "pause.tar"))
		if out, err := imp.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("nodekit-cri import: %w\n%s", err, out)
		}
		defaultCgroup, err := w.makeCgroup(short + "-default")
		if err != nil {
			return nil, err
		}
		socket = filepath.Join(root, "cri.sock")
		d, err := daemon.Start("nodekit-cri", filepath.Join(root, "nodekit-cri.log"), cri,
			"--listen", socket, "--root", criRoot, "--state", state,
			"--runtime", filepath.Join(o.bin, "runc"), "--monitor", filepath.Join(o.bin, "nodekit-monitor"),
			"--cgroup-parent", defaultCgroup, "--cni-conf-dir", net.confDir, "--cni-bin-dir", net.binDir,
			"--registry-config", filepath.Join(root, "registries.toml"), // none
			"--log-level", "warn")
		if err != nil {
			return nil, err
		}
		stopRuntime = func(say func(string, ...any)) {
			say("%s", d.Stop(time.Minute))
			found, err := leftover.DeleteRuncContainers(filepath.Join(o.bin, "runc"), filepath.Join(state, "runc"))
			if err != nil {
				say("%v", err)
			}
			for _, c := range found {
				say("%s", c)
			}
		}
		n.runtimeName, n.runtimePID = "nodekit-cri", d.PID()
		n.runtimeDone = func() error {
			if d.Exited() {
				return fmt.Errorf("nodekit-cri exited: %v\n%s", d.Err(), d.LogTail(30))
			}
			return nil
		}
		n.helperName = "nodekit-monitor"
		n.helpers = func() ([]int, error) {
			procs, err := procfs.List()
			var pids []int
			for _, p := range procs {
				if leftover.IsMonitorUnder(p.Args, state) {
					pids = append(pids, p.PID)
				}
			}
			return pids, err
		}
		n.version = "nodekit-cri (" + cri + ")"
		if err := waitSocket(ctx, socket, 30*time.Second, n.runtimeDone); err != nil {
			stopRuntime(func(string, ...any) {})
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown agent %q", kind)
	}
	// From here the caller stops the runtime with n.stop (also at cleanup),
	// after the kubelet, its pods removed through CRI first.
	var kubeletD *daemon.Daemon
	n.stop = func(say func(string, ...any)) {
		if kubeletD != nil && !kubeletD.Exited() {
			say("%s", kubeletD.Stop(time.Minute))
		}
		if n.runtimeDone() == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			k, err := removeAllPods(ctx, socket)
			cancel()
			say("%s: removed %d pod sandboxes through CRI%s", n.runtimeName, k, errSuffix(err))
		}
		stopRuntime(say)
	}

	if err := w.saveSysctls(); err != nil {
		return n, err
	}
	kd, err := startKubelet(w, o, cp, root, short, name, "unix://"+socket)
	if err != nil {
		return n, err
	}
	kubeletD = kd
	n.agent = kd
	return n, nil
}

// kubeletConfig is the upstream kubelet's KubeletConfiguration: what it needs
// to run beside other agents on this machine (cgroup v1, no systemd, no swap
// accounting, loopback addresses) and not to evict, GC images or pull.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
tlsCertFile: %s
tlsPrivateKeyFile: %s
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
containerRuntimeEndpoint: %s
cgroupDriver: cgroupfs
cgroupRoot: %s
cgroupsPerQOS: true
failSwapOn: false
failCgroupV1: false
staticPodPath: ""
podLogsDir: %s
volumePluginDir: %s
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`

// startKubelet starts the upstream kubelet built by `make kubelet-anchor`.
func startKubelet(w *workspace, o options, cp *controlplane.ControlPlane, root, short, name, endpoint string) (*daemon.Daemon, error) {
	kubelet := filepath.Join(o.controlPlane, "bin", "kubelet")
	hostIP, err := defaultRouteIP()
	if err != nil {
		return nil, err
	}
	kubeconfig, err := cp.WriteNodeKubeconfig(name)
	if err != nil {
		return nil, err
	}
	cert, key, err := cp.WriteKubeletServingCert(name, hostIP)
	if err != nil {
		return nil, err
	}
	cgroupRoot, err := w.makeCgroup(short)
	if err != nil {
		return nil, err
	}
	port, healthz, err := ports()
	if err != nil {
		return nil, err
	}
	kroot := filepath.Join(root, "kubelet")
	if err := os.MkdirAll(kroot, 0o750); err != nil {
		return nil, err
	}
	config := filepath.Join(root, "kubelet.yaml")
	conf := fmt.Sprintf(kubeletConfig, port, healthz, cert, key, cp.CAFile, endpoint, cgroupRoot,
		filepath.Join(root, "logs"), filepath.Join(root, "volume-plugins"))
	if err := os.WriteFile(config, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	args := []string{"env", "PATH=" + kubeletPath, kubelet,
		"--config", config,
		"--kubeconfig", kubeconfig,
		"--hostname-override", name,
		"--node-ip", hostIP.String(),
		"--root-dir", kroot,
		"--cert-dir", filepath.Join(kroot, "pki"),
	}
	return daemon.Start("kubelet", filepath.Join(root, "kubelet.log"), args...)
}

// kubeletPath is the upstream kubelet's $PATH: without /usr/sbin, so that it
// finds no iptables and adds no chain (KUBE-FIREWALL, KUBE-KUBELET-CANARY,
// KUBE-IPTABLES-HINT) to the host's tables ("No iptables support on this
// system"); nodekit adds none either. /bin and /sbin are links into /usr on
// Debian 12.
const kubeletPath = "/usr/local/bin:/usr/bin"

// defaultRouteIP is the IPv4 address of the interface of the default route:
// the upstream kubelet refuses a loopback --node-ip.
func defaultRouteIP() (net.IP, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 || fields[1] != "00000000" {
			continue
		}
		ifi, err := net.InterfaceByName(fields[0])
		if err != nil {
			return nil, err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if in, ok := a.(*net.IPNet); ok && in.IP.To4() != nil && in.IP.IsGlobalUnicast() {
				return in.IP.To4(), nil
			}
		}
	}
	return nil, errors.New("no IPv4 address on the default route's interface (the upstream kubelet needs a non-loopback --node-ip)")
}

// waitSocket polls until a CRI server answers on socket.
func waitSocket(ctx context.Context, socket string, limit time.Duration, alive func() error) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return nil
		}
		if err := alive(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no server after %s", socket, limit)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// removeAllPods stops and removes every pod sandbox of the CRI runtime at
// socket.
func removeAllPods(ctx context.Context, socket string) (int, error) {
	rt, err := criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + socket).WithConnectionTimeout(30 * time.Second).Build(ctx)
	if err != nil {
		return 0, err
	}
	defer rt.Close(context.Background())
	pods, err := rt.ListPodSandbox(ctx, nil)
	if err != nil {
		return 0, err
	}
	var errs []error
	var n int
	for _, p := range pods {
		if err := rt.StopPodSandbox(ctx, p.Id); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := rt.RemovePodSandbox(ctx, p.Id); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return "; errors: " + err.Error()
}

// versionOf runs bin with args and returns the first line of its output.
func versionOf(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}
