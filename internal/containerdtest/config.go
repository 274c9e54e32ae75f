package containerdtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Debian's containerd: its binaries, the package that installs them, and the
// CRI plugin's containerd namespace.
const (
	Binary     = "/usr/bin/containerd"
	ShimBinary = "/usr/bin/containerd-shim-runc-v2"
	CtrBinary  = "/usr/bin/ctr"
	Package    = "containerd"
	Namespace  = "k8s.io"

	// DefaultSandboxImage is the pause image of nodekit's sample images
	// (`make images`), imported rather than pulled.
	DefaultSandboxImage = "nodekit.local/pause:latest"
)

// HostDirs are the directories containerd 1.6 and libcni create outside a
// containerd's root and state whatever its config says: the shims' sockets in
// /run/containerd/s, libcni's result cache in /var/lib/cni/results. Parents
// come before their children.
var HostDirs = []string{
	"/run/containerd", "/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc",
	"/var/lib/cni", "/var/lib/cni/results",
}

// Missing returns an error naming the first of containerd's binaries that is
// not installed and the Debian package that installs it, or nil.
func Missing() error {
	for _, b := range []string{Binary, ShimBinary, CtrBinary} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s missing: install the Debian package %q (`sudo make setup` does): %w", b, Package, err)
		}
	}
	return nil
}

// Config is a private containerd's configuration.
type Config struct {
	// Dir holds everything: root (Dir/root), temp files, the gRPC socket
	// (Dir/containerd.sock) and its ttrpc twin, config.toml and containerd.log.
	// Keep it short: unix socket paths are limited to 108 bytes.
	Dir string
	// State is containerd's state directory: task bundles and rootfs mounts,
	// pinned network namespaces, runc's state (default Dir/state).
	State string
	// Runc is the OCI runtime binary of the runc runtime (BinaryName).
	Runc string
	// CNIConfDir and CNIBinDir are the CRI plugin's CNI configuration and
	// plugin directories. containerd 1.6 runs the loopback plugin itself, from
	// CNIBinDir, and fails RunPodSandbox unless the network's result has an
	// eth0 with an address.
	CNIConfDir, CNIBinDir string
	// SandboxImage is the pause image (default DefaultSandboxImage).
	SandboxImage string
	// Mirrors send pulls from registries elsewhere, in this order.
	Mirrors []Mirror
	// LogLevel is containerd's log level (default "warn").
	LogLevel string
}

// Mirror sends pulls from Registry (a host name) to Endpoint (a URL).
type Mirror struct{ Registry, Endpoint string }

// Address is the containerd's gRPC socket, where CRI is served.
func (c Config) Address() string { return filepath.Join(c.Dir, "containerd.sock") }

// StateDir is the containerd's state directory.
func (c Config) StateDir() string {
	if c.State != "" {
		return c.State
	}
	return filepath.Join(c.Dir, "state")
}

// RuncRoot is the runc --root of the containers the CRI plugin runs.
func (c Config) RuncRoot() string { return filepath.Join(c.StateDir(), "runc", Namespace) }

func (c Config) check() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"Dir", c.Dir}, {"Runc", c.Runc}, {"CNIConfDir", c.CNIConfDir}, {"CNIBinDir", c.CNIBinDir}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("containerd config: %s is empty", f.name))
		} else if !filepath.IsAbs(f.v) {
			errs = append(errs, fmt.Errorf("containerd config: %s %q is not an absolute path", f.name, f.v))
		}
	}
	if n := len(c.Address() + ".ttrpc"); n > 107 {
		errs = append(errs, fmt.Errorf("containerd config: Dir %q is too long for its sockets (%d bytes, unix sockets take 107)", c.Dir, n))
	}
	return errors.Join(errs...)
}

// TOML renders the configuration as containerd's config.toml (version 2).
func (c Config) TOML() string {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	image, level := c.SandboxImage, c.LogLevel
	if image == "" {
		image = DefaultSandboxImage
	}
	if level == "" {
		level = "warn"
	}
	var mirrors strings.Builder
	for _, m := range c.Mirrors {
		fmt.Fprintf(&mirrors, "  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.%q]\n    endpoint = [%q]\n", m.Registry, m.Endpoint)
	}
	return `version = 2
root = ` + q(filepath.Join(c.Dir, "root")) + `
state = ` + q(c.StateDir()) + `
temp = ` + q(filepath.Join(c.Dir, "tmp")) + `
# Plugins that only make noise here (no such filesystems) or write outside the dir (/opt/containerd).
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ` + q(c.Address()) + `

[ttrpc]
  address = ` + q(c.Address()+".ttrpc") + `

[debug]
  level = ` + q(level) + `

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ` + q(image) + `
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = ` + q(c.Runc) + `
        Root = ` + q(filepath.Join(c.StateDir(), "runc")) + `
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ` + q(c.CNIBinDir) + `
    conf_dir = ` + q(c.CNIConfDir) + `
` + mirrors.String()
}
