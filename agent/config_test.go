package agent

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loadWith writes file (when not empty) as the --config file, parses args and
// loads the configuration as nodekit-kubelet does.
func loadWith(t *testing.T, file string, args ...string) (*Config, error) {
	t.Helper()
	if file != "" {
		p := filepath.Join(t.TempDir(), "kubelet.yaml")
		if err := os.WriteFile(p, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", p}, args...)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f.Load()
}

func TestConfigDefaults(t *testing.T) {
	c, err := loadWith(t, "")
	if err != nil {
		t.Fatal(err)
	}
	k := &c.Kubelet
	host, _ := os.Hostname()
	checks := []struct {
		field     string
		got, want any
	}{
		{"RootDir", c.RootDir, DefaultRootDir},
		{"NodeName", c.NodeName, strings.ToLower(host)},
		{"RuntimeEndpoint", c.RuntimeEndpoint, ""},
		{"staticPodPath", k.StaticPodPath, ""},
		{"syncFrequency", k.SyncFrequency.Duration, time.Minute},
		{"fileCheckFrequency", k.FileCheckFrequency.Duration, 20 * time.Second},
		{"runtimeRequestTimeout", k.RuntimeRequestTimeout.Duration, 2 * time.Minute},
		{"address", k.Address, "0.0.0.0"},
		{"port", k.Port, int32(10250)},
		{"readOnlyPort", k.ReadOnlyPort, int32(0)},
		{"healthzPort", *k.HealthzPort, int32(10248)},
		{"healthzBindAddress", k.HealthzBindAddress, "127.0.0.1"},
		{"cgroupDriver", k.CgroupDriver, "cgroupfs"},
		{"podLogsDir", k.PodLogsDir, "/var/log/pods"},
		{"maxPods", k.MaxPods, int32(110)},
		{"authentication.anonymous.enabled", *k.Authentication.Anonymous.Enabled, false},
		{"containerLogMaxFiles", *k.ContainerLogMaxFiles, int32(5)},
		{"containerLogMaxSize", k.ContainerLogMaxSize, "10Mi"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
}

const testConfigFile = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/file/manifests
syncFrequency: 30s
port: 11250
healthzPort: 0
cgroupDriver: systemd
cgroupRoot: /custom
podLogsDir: /srv/logs
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous:
    enabled: true
`

func TestConfigFileAndFlags(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		args  []string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "file only",
			file: testConfigFile,
			check: func(t *testing.T, c *Config) {
				k := &c.Kubelet
				if k.StaticPodPath != "/etc/file/manifests" || k.SyncFrequency.Duration != 30*time.Second || k.Port != 11250 ||
					*k.HealthzPort != 0 || k.CgroupDriver != "systemd" || k.CgroupRoot != "/custom" || k.PodLogsDir != "/srv/logs" ||
					!*k.Authentication.Anonymous.Enabled {
					t.Errorf("file values not loaded: %+v", k)
				}
				if c.RuntimeEndpoint != "unix:///run/containerd/containerd.sock" {
					t.Errorf("runtime endpoint %q, want the file's", c.RuntimeEndpoint)
				}
				// What the file leaves out gets the defaults.
				if k.FileCheckFrequency.Duration != 20*time.Second || k.Address != "0.0.0.0" {
					t.Errorf("defaults not applied under the file: fileCheckFrequency %s, address %q", k.FileCheckFrequency.Duration, k.Address)
				}
			},
		},
		{
			name: "flags given on the command line win over the file",
			file: testConfigFile,
			args: []string{"--pod-manifest-path", "/flag/manifests", "--port", "12250", "--healthz-port", "12248",
				"--cgroup-driver", "cgroupfs", "--sync-frequency", "5s", "--anonymous-auth=false",
				"--container-runtime-endpoint", "unix:///flag.sock", "--root-dir", "/srv/agent", "--hostname-override", "Node-A",
				"--pod-logs-dir", "/flag/logs", "--file-check-frequency", "3s", "--address", "127.0.0.1", "--read-only-port", "12255",
				"--cgroup-root", "/flag/root"},
			check: func(t *testing.T, c *Config) {
				k := &c.Kubelet
				checks := []struct {
					field     string
					got, want any
				}{
					{"staticPodPath", k.StaticPodPath, "/flag/manifests"},
					{"port", k.Port, int32(12250)},
					{"healthzPort", *k.HealthzPort, int32(12248)},
					{"cgroupDriver", k.CgroupDriver, "cgroupfs"},
					{"syncFrequency", k.SyncFrequency.Duration, 5 * time.Second},
					{"anonymous", *k.Authentication.Anonymous.Enabled, false},
					{"RuntimeEndpoint", c.RuntimeEndpoint, "unix:///flag.sock"},
					{"RootDir", c.RootDir, "/srv/agent"},
					{"NodeName", c.NodeName, "node-a"},
					{"podLogsDir", k.PodLogsDir, "/flag/logs"},
					{"fileCheckFrequency", k.FileCheckFrequency.Duration, 3 * time.Second},
					{"address", k.Address, "127.0.0.1"},
					{"readOnlyPort", k.ReadOnlyPort, int32(12255)},
					{"cgroupRoot", k.CgroupRoot, "/flag/root"},
				}
				for _, c := range checks {
					if c.got != c.want {
						t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
					}
				}
			},
		},
		{
			name: "flags left at their defaults do not override the file",
			file: testConfigFile,
			args: []string{"--hostname-override", "n1"},
			check: func(t *testing.T, c *Config) {
				k := &c.Kubelet
				if k.Port != 11250 || *k.HealthzPort != 0 || k.CgroupDriver != "systemd" || k.SyncFrequency.Duration != 30*time.Second {
					t.Errorf("file values overridden by unset flags: port %d healthz %d driver %s sync %s",
						k.Port, *k.HealthzPort, k.CgroupDriver, k.SyncFrequency.Duration)
				}
			},
		},
		{
			name: "JSON file",
			file: `{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "port": 13250}`,
			check: func(t *testing.T, c *Config) {
				if c.Kubelet.Port != 13250 {
					t.Errorf("port %d, want 13250", c.Kubelet.Port)
				}
			},
		},
		{
			name: "flags only",
			args: []string{"--port", "0", "--healthz-port", "0"},
			check: func(t *testing.T, c *Config) {
				if c.Kubelet.Port != 0 || *c.Kubelet.HealthzPort != 0 {
					t.Errorf("port %d healthz %d, want 0 and 0 (free port, off)", c.Kubelet.Port, *c.Kubelet.HealthzPort)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadWith(t, tc.file, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	const head = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
	tests := []struct {
		name string
		file string
		args []string
		want []string // substrings of the error
	}{
		{"unknown field", head + "podManifestPath: /x\n", nil, []string{"podManifestPath"}},
		{"wrong type", head + "port: eighty\n", nil, []string{"port"}},
		{"wrong kind", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: Pod\n", nil, []string{"kind", "Pod"}},
		{"wrong apiVersion", "apiVersion: v1\nkind: KubeletConfiguration\n", nil, []string{"apiVersion", "v1"}},
		{"cgroup driver", head + "cgroupDriver: cgroupz\n", nil, []string{"cgroupDriver", "cgroupz"}},
		{"cgroup driver flag", "", []string{"--cgroup-driver", "none"}, []string{"cgroupDriver", "none"}},
		{"port", head + "port: 70000\n", nil, []string{"port", "70000"}},
		{"read-only port", "", []string{"--read-only-port", "-1"}, []string{"readOnlyPort"}},
		{"healthz port", head + "healthzPort: 65536\n", nil, []string{"healthzPort"}},
		{"sync frequency", "", []string{"--sync-frequency", "100ms"}, []string{"syncFrequency"}},
		{"relative root dir", "", []string{"--root-dir", "var/lib/x"}, []string{"--root-dir", "var/lib/x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadWith(t, tc.file, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope.yaml")
		_, err := LoadConfig(missing)
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("error %v does not name the file %s", err, missing)
		}
	})
}

// TestConfigAuthDefaults: the kubelet's defaults of the API's authentication
// and authorization — without a file its command line's (no webhook,
// AlwaysAllow), with a file v1beta1's (webhook, Webhook) — and the flags.
func TestConfigAuthDefaults(t *testing.T) {
	type auth struct {
		webhook                  bool
		ttl                      time.Duration
		mode                     string
		authorized, unauthorized time.Duration
	}
	for _, tc := range []struct {
		name string
		file string
		args []string
		want auth
	}{
		{"no file", "", nil, auth{false, 2 * time.Minute, "AlwaysAllow", 5 * time.Minute, 30 * time.Second}},
		{"a file", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n", nil,
			auth{true, 2 * time.Minute, "Webhook", 5 * time.Minute, 30 * time.Second}},
		{"a file's settings", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n" +
			"authentication:\n  webhook:\n    enabled: false\n    cacheTTL: 10s\nauthorization:\n  mode: AlwaysAllow\n  webhook:\n    cacheAuthorizedTTL: 1m\n    cacheUnauthorizedTTL: 2s\n",
			nil, auth{false, 10 * time.Second, "AlwaysAllow", time.Minute, 2 * time.Second}},
		{"flags", "", []string{"--authentication-token-webhook", "--authentication-token-webhook-cache-ttl=1m",
			"--authorization-mode=Webhook", "--authorization-webhook-cache-authorized-ttl=3m", "--authorization-webhook-cache-unauthorized-ttl=5s"},
			auth{true, time.Minute, "Webhook", 3 * time.Minute, 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadWith(t, tc.file, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			k := &c.Kubelet
			got := auth{*k.Authentication.Webhook.Enabled, k.Authentication.Webhook.CacheTTL.Duration, string(k.Authorization.Mode),
				k.Authorization.Webhook.CacheAuthorizedTTL.Duration, k.Authorization.Webhook.CacheUnauthorizedTTL.Duration}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := loadWith(t, "", "--authorization-mode=RBAC"); err == nil || !strings.Contains(err.Error(), "AlwaysAllow or Webhook") {
		t.Errorf("--authorization-mode=RBAC: err %v", err)
	}
}

// LoadConfig, used without Flags by embedders, gives the node the host's name
// (lowercased, as the kubelet's) and the file's containerRuntimeEndpoint;
// --hostname-override (trimmed and lowercased) wins over the host name.
func TestLoadConfigNodeNameAndEndpoint(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ToLower(strings.TrimSpace(host)); c.NodeName != want {
		t.Errorf("LoadConfig(\"\"): node name %q, want the host name %q", c.NodeName, want)
	}
	p := filepath.Join(t.TempDir(), "kubelet.yaml")
	if err := os.WriteFile(p, []byte(testConfigFile), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.RuntimeEndpoint != "unix:///run/containerd/containerd.sock" {
		t.Errorf("LoadConfig(file): runtime endpoint %q, want the file's containerRuntimeEndpoint", c.RuntimeEndpoint)
	}
	c, err = loadWith(t, "", "--hostname-override", " Node-B ")
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "node-b" {
		t.Errorf("--hostname-override ' Node-B ': node name %q, want node-b", c.NodeName)
	}
}
