package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/nodekit-dev/nodekit/bench/internal/daemon"
	"github.com/nodekit-dev/nodekit/bench/internal/leftover"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/internal/containerdtest"
)

// startNodekit imports the images into a fresh store and starts nodekit-cri with
// its root, state and socket in the workspace.
func startNodekit(ctx context.Context, w *workspace, bin, images string, net cniNetwork) (*criRuntime, bool, error) {
	root, state := w.path("nodekit", "root"), w.stateDir("nodekit")
	for _, d := range []string{root, state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, false, err
		}
	}
	cri := filepath.Join(bin, "nodekit-cri")
	tars := []string{filepath.Join(images, "busybox.tar"), filepath.Join(images, "pause.tar")}
	if out, err := exec.CommandContext(ctx, cri, append([]string{"import", "--root", root}, tars...)...).CombinedOutput(); err != nil {
		return nil, false, fmt.Errorf("nodekit-cri import: %w\n%s", err, out)
	}
	w.addRuncRoot(filepath.Join(state, "runc"))

	r := &criRuntime{
		name:   "nodekit",
		socket: w.path("nodekit", "cri.sock"),
		logDir: w.path("logs", "nodekit"),
		cgroup: path.Join(w.cgroup, "nodekit"),
		ws:     w,
		onPod:  w.addPod,
		helpers: func(all []procfs.Proc) []procfs.Proc {
			return procsWhere(all, func(p procfs.Proc) bool { return leftover.IsMonitorUnder(p.Args, state) })
		},
	}
	argv := []string{cri, "--listen", r.socket, "--root", root, "--state", state,
		"--runtime", filepath.Join(bin, "runc"), "--monitor", filepath.Join(bin, "nodekit-monitor"),
		"--cgroup-parent", path.Join(w.cgroup, "nodekit-default"), "--log-level", "warn"}
	// -mode critest: critest's registries are mirrored to the local registry.
	if w.registries != "" {
		argv = append(argv, "--registry-config", w.registries)
	}
	// A nodekit-cri with CNI gets the same network as containerd (never the
	// host's /etc/cni/net.d, which may hold a bridge network).
	withCNI := supportsFlag(cri, "cni-conf-dir") && supportsFlag(cri, "cni-bin-dir")
	if withCNI {
		argv = append(argv, "--cni-conf-dir", net.confDir, "--cni-bin-dir", net.binDir)
	}
	d, err := daemon.Start("nodekit-cri", w.path("nodekit", "nodekit-cri.log"), argv...)
	if err != nil {
		return nil, withCNI, err
	}
	w.addDaemon(d)
	r.daemon = d
	w.addRuntime(r)
	if err := r.dial(ctx, 30*time.Second); err != nil {
		return nil, withCNI, err
	}
	return r, withCNI, nil
}

// noopCNI is a CNI plugin that configures nothing and reports an eth0 with a
// documentation address (RFC 5737). containerd 1.6 fails RunPodSandbox unless the
// CNI result has an eth0 with an IP, so a loopback-only network list is refused;
// with this plugin its pods get what nodekit's get: a private netns whose lo is up
// (containerd always runs the loopback plugin itself), nothing else.
const noopCNI = `#!/bin/sh
# nkbench-noop: CNI plugin that configures nothing (see bench/crishim/runtimes.go).
cat >/dev/null
case "$CNI_COMMAND" in
ADD) printf '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"%s"}],"ips":[{"address":"192.0.2.1/32","interface":0}]}' "$CNI_NETNS" ;;
VERSION) printf '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}' ;;
esac
`

// cniNetwork is the CNI network both runtimes get: loopback plus nkbench-noop.
type cniNetwork struct{ confDir, binDir string }

// setupCNI writes the benchmark's CNI network into the workspace.
func setupCNI(w *workspace) (cniNetwork, error) {
	n := cniNetwork{confDir: w.path("cni", "net.d"), binDir: w.path("cni", "bin")}
	for _, d := range []string{n.confDir, n.binDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return n, err
		}
	}
	conf := `{"cniVersion":"1.0.0","name":"nkbench","plugins":[{"type":"nkbench-noop"}]}` + "\n"
	if err := os.WriteFile(filepath.Join(n.confDir, "10-nkbench.conflist"), []byte(conf), 0o644); err != nil {
		return n, err
	}
	if err := os.WriteFile(filepath.Join(n.binDir, "nkbench-noop"), []byte(noopCNI), 0o755); err != nil {
		return n, err
	}
	// The runtimes run the loopback plugin themselves, from the bin dir: Debian's.
	if err := os.Symlink("/usr/lib/cni/loopback", filepath.Join(n.binDir, "loopback")); err != nil {
		return n, err
	}
	return n, nil
}

// supportsFlag reports whether `bin --help` mentions -flag.
func supportsFlag(bin, flag string) bool {
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	return strings.Contains(string(out), "-"+flag+" ")
}

// containerdConfig is a version 2 config with everything under dir
// (containerdtest.Config). With a mirror (host:port of a registry on
// 127.0.0.1), the registries critest pulls from are sent there, as nodekit's
// registries.toml does for nodekit-cri.
func containerdConfig(dir, state, runc string, net cniNetwork, mirror string) string {
	cfg := containerdtest.Config{Dir: dir, State: state, Runc: runc, CNIConfDir: net.confDir, CNIBinDir: net.binDir}
	if mirror != "" {
		for _, reg := range critestRegistries {
			cfg.Mirrors = append(cfg.Mirrors, containerdtest.Mirror{Registry: reg, Endpoint: "http://" + mirror})
		}
	}
	return cfg.TOML()
}

// startContainerd writes a private config, starts /usr/bin/containerd, imports the
// images with ctr and waits until CRI reports RuntimeReady and NetworkReady.
func startContainerd(ctx context.Context, w *workspace, images string, net cniNetwork) (*criRuntime, error) {
	if err := containerdtest.Missing(); err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	dir := w.path("containerd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(containerdConfig(dir, w.stateDir("containerd"), w.runc, net, w.registry)), 0o644); err != nil {
		return nil, err
	}

	socket := w.containerdSocket()
	w.mu.Lock()
	w.ctdUsed = true
	w.mu.Unlock()
	w.addRuncRoot(filepath.Join(w.stateDir("containerd"), "runc", "k8s.io"))
	r := &criRuntime{
		name:   "containerd",
		socket: socket,
		logDir: w.path("logs", "containerd"),
		cgroup: path.Join(w.cgroup, "containerd"),
		ws:     w,
		onPod:  w.addPod,
		helpers: func(all []procfs.Proc) []procfs.Proc {
			return procsWhere(all, func(p procfs.Proc) bool { return containerdtest.IsShim(p.Args, socket) })
		},
		pause: func(all, shims []procfs.Proc) []procfs.Proc {
			parents := map[int]bool{}
			for _, s := range shims {
				parents[s.PID] = true
			}
			return procsWhere(all, func(p procfs.Proc) bool { return parents[p.PPID] && len(p.Args) > 0 && p.Args[0] == "/pause" })
		},
	}
	d, err := daemon.Start("containerd", filepath.Join(dir, "containerd.log"), containerdtest.Binary, "--config", filepath.Join(dir, "config.toml"))
	if err != nil {
		return nil, err
	}
	w.addDaemon(d)
	r.daemon = d
	w.addRuntime(r)
	if err := r.dial(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	if err := containerdtest.Import(ctx, socket, filepath.Join(images, "busybox.tar"), filepath.Join(images, "pause.tar")); err != nil {
		return nil, err
	}
	if _, err := r.waitReady(ctx, true, 30*time.Second); err != nil {
		return nil, err
	}
	return r, nil
}

// versionOf runs `bin --version` (or `bin -v`) and returns its first line.
func versionOf(bin string, args ...string) string {
	if len(args) == 0 {
		args = []string{"--version"}
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}
