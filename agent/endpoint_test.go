package agent

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	critest "k8s.io/cri-api/pkg/apis/testing"
	fakeremote "k8s.io/cri-client/pkg/fake"
)

// endpointConfig is a config for an agent whose runtime is at endpoint.
func endpointConfig(t *testing.T, endpoint string) *Config {
	t.Helper()
	dir := t.TempDir()
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.NodeName = "node1"
	cfg.NodeIP = "192.0.2.10"
	cfg.RootDir = filepath.Join(dir, "root")
	cfg.Kubelet.PodLogsDir = filepath.Join(dir, "logs")
	noCgroups := false
	cfg.Kubelet.CgroupsPerQOS = &noCgroups
	cfg.Kubelet.RuntimeRequestTimeout.Duration = 10 * time.Second
	cfg.RuntimeEndpoint = endpoint
	return cfg
}

// With Config.RuntimeEndpoint and no Options.Runtime, New dials the endpoint
// (unix:// or a bare socket path, as the kubelet's --container-runtime-endpoint).
func TestNewDialsRuntimeEndpoint(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cri.sock")
	fake := fakeremote.NewFakeRemoteRuntime()
	if err := fake.Start("unix://" + sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)
	for _, endpoint := range []string{"unix://" + sock, sock} {
		t.Run(endpoint, func(t *testing.T) {
			a, err := New(Options{Config: endpointConfig(t, endpoint), Logger: discardLogger(), DisableServer: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(a.closeRuntime)
			if a.rtName != critest.FakeRuntimeName {
				t.Fatalf("runtime %q, want the fake at %s", a.rtName, endpoint)
			}
		})
	}
}

// A bad endpoint is refused at once, with an error naming it.
func TestNewBadRuntimeEndpoint(t *testing.T) {
	for _, endpoint := range []string{"tcp://127.0.0.1:1", "npipe:////./pipe/cri", "unix://", "unix://relative.sock", "relative.sock"} {
		t.Run(endpoint, func(t *testing.T) {
			_, err := New(Options{Config: endpointConfig(t, endpoint), Logger: discardLogger(), DisableServer: true})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "container runtime endpoint") || !strings.Contains(err.Error(), endpoint) {
				t.Fatalf("error %q does not name the endpoint", err)
			}
		})
	}
}

// A runtime passed in Options and an endpoint in Config are two answers to one
// question: New refuses to pick one.
func TestNewRuntimeAndEndpoint(t *testing.T) {
	_, err := New(Options{
		Config:  endpointConfig(t, "unix:///run/containerd/containerd.sock"),
		Runtime: critest.NewFakeRuntimeService(), Images: critest.NewFakeImageService(),
		Logger: discardLogger(), DisableServer: true,
	})
	if err == nil || !strings.Contains(err.Error(), "RuntimeEndpoint") {
		t.Fatalf("error %v, want one naming Config.RuntimeEndpoint", err)
	}
}
