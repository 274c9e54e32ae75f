package containerdtest

import (
	"strings"
	"testing"
)

func TestIsShim(t *testing.T) {
	const sock = "/tmp/nkbench-1/containerd/containerd.sock"
	tests := []struct {
		name string
		args []string
		want bool
	}{
		{"ours", []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "abc", "-address", sock}, true},
		{"ours with =", []string{"containerd-shim-runc-v2", "-id", "abc", "--address=" + sock}, true},
		{"other containerd", []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "t2", "-address", "/tmp/other/sock"}, false},
		{"socket as a prefix only", []string{"/usr/bin/containerd-shim-runc-v2", "-address", sock + ".ttrpc"}, false},
		{"not a shim", []string{"/usr/bin/containerd", "-address", sock}, false},
		{"flag without value", []string{"/usr/bin/containerd-shim-runc-v2", "-address"}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsShim(tt.args, sock); got != tt.want {
				t.Errorf("IsShim(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

func TestShimSocket(t *testing.T) {
	// Checked against a live containerd 1.6.20: the shim of sandbox 3cc2d33a... served
	// /tmp/nkbench-manual/ctd/containerd.sock at this socket.
	got := ShimSocket("/tmp/nkbench-manual/ctd/containerd.sock", "k8s.io", "3cc2d33a19bfca53b9dd8bab9899e8483745fffb5c5b56ef428fc35325222350")
	if want := "/run/containerd/s/36d94964381e93a67fd988fb06c50a75ab69c4c98fdb5c6f5b1695221c578ab1"; got != want {
		t.Errorf("ShimSocket = %s, want %s", got, want)
	}
}

func TestConfigTOML(t *testing.T) {
	base := Config{Dir: "/w/ctd", Runc: "/bin/runc", CNIConfDir: "/w/net.d", CNIBinDir: "/usr/lib/cni"}
	withState := base
	withState.State = "/run/w/ctd"
	custom := base
	custom.SandboxImage, custom.LogLevel = "registry.k8s.io/pause:3.9", "debug"
	mirrored := base
	mirrored.Mirrors = []Mirror{{"registry.k8s.io", "http://127.0.0.1:5000"}, {"gcr.io", "http://127.0.0.1:5000"}}
	tests := []struct {
		name      string
		cfg       Config
		want, not []string
	}{
		{"defaults", base, []string{
			`root = "/w/ctd/root"`, `state = "/w/ctd/state"`, `temp = "/w/ctd/tmp"`,
			`address = "/w/ctd/containerd.sock"`, `address = "/w/ctd/containerd.sock.ttrpc"`,
			`level = "warn"`, `sandbox_image = "nodekit.local/pause:latest"`, "restrict_oom_score_adj = true",
			`BinaryName = "/bin/runc"`, `Root = "/w/ctd/state/runc"`,
			`bin_dir = "/usr/lib/cni"`, `conf_dir = "/w/net.d"`,
		}, []string{"registry.mirrors"}},
		{"state elsewhere", withState, []string{`state = "/run/w/ctd"`, `Root = "/run/w/ctd/runc"`}, []string{"/w/ctd/state"}},
		{"image and level", custom, []string{`sandbox_image = "registry.k8s.io/pause:3.9"`, `level = "debug"`}, []string{"nodekit.local"}},
		{"mirrors", mirrored, []string{
			`[plugins."io.containerd.grpc.v1.cri".registry.mirrors."registry.k8s.io"]` + "\n    endpoint = [\"http://127.0.0.1:5000\"]",
			`[plugins."io.containerd.grpc.v1.cri".registry.mirrors."gcr.io"]`,
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.TOML()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("config lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("config has %q:\n%s", n, got)
				}
			}
		})
	}
	if !strings.HasPrefix(mirrored.TOML(), base.TOML()) {
		t.Error("mirrors are not simply appended to the config")
	}
}

func TestConfigCheck(t *testing.T) {
	ok := Config{Dir: "/w/ctd", Runc: "/bin/runc", CNIConfDir: "/w/net.d", CNIBinDir: "/usr/lib/cni"}
	long := ok
	long.Dir = "/" + strings.Repeat("d", 100)
	relative := ok
	relative.Runc = "runc"
	tests := []struct {
		name string
		cfg  Config
		want string // "" for no error
	}{
		{"ok", ok, ""},
		{"empty", Config{}, "Dir is empty"},
		{"no CNI", Config{Dir: "/w", Runc: "/bin/runc"}, "CNIConfDir is empty"},
		{"relative", relative, `Runc "runc" is not an absolute path`},
		{"socket too long", long, "too long for its sockets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.check()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("check() = %v, want %q", err, tt.want)
			}
		})
	}
}
