package cni

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// fakeBinDir holds empty executables named like the standard plugins: enough for
// loading, which only checks that a plugin exists.
func fakeBinDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	bridgeList = `{"cniVersion":"1.0.0","name":"first","plugins":[
		{"type":"bridge","bridge":"b0","ipam":{"type":"host-local","subnet":"10.1.0.0/16"}},
		{"type":"portmap","capabilities":{"portMappings":true}}]}`
	singleConf = `{"cniVersion":"0.4.0","name":"single","type":"bridge","bridge":"b1"}`
)

func TestLoadConfigDir(t *testing.T) {
	bins := fakeBinDir(t, "bridge", "portmap", "loopback")
	tests := []struct {
		name    string
		files   map[string]string // file name → content; "" name means no directory at all
		want    Config            // File is relative to the dir
		wantErr string
	}{
		{name: "missing dir", files: nil, wantErr: "no network config found in"},
		{name: "empty dir", files: map[string]string{}, wantErr: "no network config found in"},
		{name: "other files only", files: map[string]string{"README": "x", "99.yaml": "y"}, wantErr: "no network config found in"},
		{
			name:  "conflist",
			files: map[string]string{"10-a.conflist": bridgeList},
			want:  Config{File: "10-a.conflist", Name: "first", CNIVersion: "1.0.0", Plugins: []string{"bridge", "portmap"}},
		},
		{
			name:  "single conf is wrapped into a list",
			files: map[string]string{"05-single.conf": singleConf},
			want:  Config{File: "05-single.conf", Name: "single", CNIVersion: "0.4.0", Plugins: []string{"bridge"}},
		},
		{
			name:  "first by name wins",
			files: map[string]string{"20-b.conf": singleConf, "10-a.conflist": bridgeList},
			want:  Config{File: "10-a.conflist", Name: "first", CNIVersion: "1.0.0", Plugins: []string{"bridge", "portmap"}},
		},
		{
			name:  "json extension",
			files: map[string]string{"30.json": singleConf},
			want:  Config{File: "30.json", Name: "single", CNIVersion: "0.4.0", Plugins: []string{"bridge"}},
		},
		{
			name:    "first file broken: not ready, naming it",
			files:   map[string]string{"10-bad.conflist": `{"name":`, "20-good.conflist": bridgeList},
			wantErr: "10-bad.conflist",
		},
		{
			name:    "no plugins",
			files:   map[string]string{"10.conflist": `{"cniVersion":"1.0.0","name":"x","plugins":[]}`},
			wantErr: "no plugins in list",
		},
		{
			name:    "missing plugin binary",
			files:   map[string]string{"10.conflist": `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"macvlan"}]}`},
			wantErr: `plugin 0 ("macvlan") not found in ` + bins,
		},
		{
			name:    "bad cniVersion",
			files:   map[string]string{"10.conflist": `{"cniVersion":"one","name":"x","plugins":[{"type":"bridge"}]}`},
			wantErr: `cniVersion "one"`,
		},
		{
			name:    "bad network name",
			files:   map[string]string{"10.conflist": `{"cniVersion":"1.0.0","name":"a/b","plugins":[{"type":"bridge"}]}`},
			wantErr: `network name "a/b"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "net.d")
			if tc.files != nil {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for name, content := range tc.files {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			m := New(Options{ConfDir: dir, BinDirs: []string{bins}})
			got, err := m.Config()
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Config() error = %v, want ErrNotReady mentioning %q", err, tc.wantErr)
				}
				if _, err := m.Prepare(Pod{ID: "x", NetNS: "/n"}); !errors.Is(err, ErrNotReady) {
					t.Fatalf("Prepare() error = %v, want ErrNotReady", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.File = filepath.Join(dir, tc.want.File)
			if got.File != tc.want.File || got.Name != tc.want.Name || got.CNIVersion != tc.want.CNIVersion || !slices.Equal(got.Plugins, tc.want.Plugins) {
				t.Fatalf("Config() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A configuration added, changed or removed later is seen at the next call.
func TestConfigReload(t *testing.T) {
	dir := t.TempDir()
	m := New(Options{ConfDir: dir, BinDirs: []string{fakeBinDir(t, "bridge", "portmap")}})
	if _, err := m.Config(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("empty dir: %v, want ErrNotReady", err)
	}
	write := func(name, content string, mtime time.Time) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-time.Hour)
	write("20-single.conf", singleConf, t0)
	if c, err := m.Config(); err != nil || c.Name != "single" {
		t.Fatalf("after adding a config: %+v, %v", c, err)
	}
	write("10-first.conflist", bridgeList, t0)
	if c, err := m.Config(); err != nil || c.Name != "first" {
		t.Fatalf("after adding an earlier config: %+v, %v", c, err)
	}
	// Rewritten in place (same name): seen through its size and mtime.
	write("10-first.conflist", strings.Replace(bridgeList, `"first"`, `"renamed"`, 1), t0.Add(time.Second))
	if c, err := m.Config(); err != nil || c.Name != "renamed" {
		t.Fatalf("after changing the config: %+v, %v", c, err)
	}
	write("10-first.conflist", `{broken`, t0.Add(2*time.Second))
	if _, err := m.Config(); !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "10-first.conflist") {
		t.Fatalf("after breaking the config: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "10-first.conflist")); err != nil {
		t.Fatal(err)
	}
	if c, err := m.Config(); err != nil || c.Name != "single" {
		t.Fatalf("after removing the first config: %+v, %v", c, err)
	}
}

// Prepare builds everything DEL needs: a self-contained configuration, the
// Kubernetes arguments, the port mappings.
func TestPrepare(t *testing.T) {
	dir := t.TempDir()
	// A conflist whose plugins live beside it (NAME/*.conf), which a self-contained
	// attachment must carry inline.
	if err := os.WriteFile(filepath.Join(dir, "10.conflist"), []byte(`{"cniVersion":"1.0.0","name":"side"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "side"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "side", "1.conf"), []byte(`{"type":"bridge","bridge":"b9"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	m := New(Options{ConfDir: dir, BinDirs: []string{fakeBinDir(t, "bridge")}})
	a, err := m.Prepare(Pod{ID: "abc", NetNS: "/run/x/net", Namespace: "ns", Name: "web", UID: "u-1",
		Ports: []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Network != "side" || a.IfName != "eth0" || a.ContainerID != "abc" || a.NetNS != "/run/x/net" || len(a.Ports) != 1 {
		t.Fatalf("attachment %+v", a)
	}
	if !strings.Contains(string(a.Config), `"bridge":"b9"`) {
		t.Fatalf("attachment config does not carry the plugin kept beside the list: %s", a.Config)
	}
	want := map[string]string{"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": "ns", "K8S_POD_NAME": "web", "K8S_POD_INFRA_CONTAINER_ID": "abc", "K8S_POD_UID": "u-1"}
	if len(a.Args) != len(want) {
		t.Fatalf("args %v, want %v", a.Args, want)
	}
	for _, kv := range a.Args {
		if want[kv[0]] != kv[1] {
			t.Fatalf("arg %s=%s, want %s", kv[0], kv[1], want[kv[0]])
		}
	}
	// The configuration survives the directory: DEL can be built from it alone.
	os.RemoveAll(dir)
	list, rt, err := m.invocation(a, a.NetNS)
	if err != nil || list.Name != "side" || len(list.Plugins) != 1 || rt.CapabilityArgs["portMappings"] == nil {
		t.Fatalf("invocation from the attachment alone: %+v %+v %v", list, rt, err)
	}
	if _, err := m.Prepare(Pod{NetNS: "/n"}); err == nil {
		t.Fatal("Prepare without an id succeeded")
	}
}

func TestPodIPs(t *testing.T) {
	idx := func(i int) *int { return &i }
	res := &types100.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*types100.Interface{
			{Name: "nk0"},                         // the bridge, on the host
			{Name: "veth1"},                       // host side of the veth
			{Name: "eth0", Sandbox: "/run/x/net"}, // the pod's
			{Name: "lo", Sandbox: "/run/x/net"},
		},
	}
	for _, ip := range []struct {
		cidr  string
		iface *int
	}{
		{"fd00::5/64", idx(2)},
		{"10.1.0.1/16", idx(0)},
		{"10.1.0.5/16", idx(2)},
		{"127.0.0.1/8", idx(3)},
		{"10.2.0.9/16", nil}, // no interface named: the pod's
	} {
		addr, err := types.ParseCIDR(ip.cidr)
		if err != nil {
			t.Fatal(err)
		}
		res.IPs = append(res.IPs, &types100.IPConfig{Address: *addr, Interface: ip.iface})
	}
	got, err := podIPs(res)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.1.0.5", "10.2.0.9", "fd00::5"}; !slices.Equal(got, want) {
		t.Fatalf("podIPs = %v, want %v", got, want)
	}
}

// The configuration `make setup` installs when /etc/cni/net.d has none.
func TestDefaultConfList(t *testing.T) {
	data, err := os.ReadFile("10-nodekit.conflist")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "10-nodekit.conflist"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	m := New(Options{ConfDir: dir, BinDirs: []string{fakeBinDir(t, "bridge", "host-local", "portmap", "loopback")}})
	c, err := m.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "nodekit" || !slices.Equal(c.Plugins, []string{"bridge", "portmap", "loopback"}) {
		t.Fatalf("default config %+v", c)
	}
	for _, want := range []string{`"bridge": "nodekit0"`, `"subnet": "10.88.0.0/16"`, `"type": "host-local"`, `"portMappings": true`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("default config lacks %s", want)
		}
	}
}
