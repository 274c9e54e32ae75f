package cni_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodekit-dev/nodekit/cri/cni"
	"github.com/nodekit-dev/nodekit/cri/podns"
	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// Real plugins on a real pinned namespace: ADD gives eth0 an address from the
// subnet, DEL releases it and removes the veth, DEL again (also once the namespace
// is gone) succeeds.
func TestAttachDetach(t *testing.T) {
	testenv.RequireRoot(t)
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		found := false
		for _, d := range cni.DefaultBinDirs {
			if _, err := os.Stat(filepath.Join(d, p)); err == nil {
				found = true
			}
		}
		if !found {
			testenv.Skip(t, "CNI plugin "+p+" not installed; run `sudo make setup`")
		}
	}
	nsenter := testenv.LookPath(t, "nsenter")
	testenv.LookPath(t, "ip")

	base := t.TempDir()
	var b [4]byte
	rand.Read(b[:])
	name := "nkc" + hex.EncodeToString(b[:])
	subnet := fmt.Sprintf("10.%d.%d.0/24", 128+int(b[0])%64, b[1])
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	confDir, ipamDir := filepath.Join(base, "net.d"), filepath.Join(base, "ipam")
	os.Mkdir(confDir, 0o755)
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[
		{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":true,
		 "ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"dataDir":%q}},
		{"type":"portmap","capabilities":{"portMappings":true}},
		{"type":"loopback"}]}`, name, name, subnet, ipamDir)
	if err := os.WriteFile(filepath.Join(confDir, "10.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	nsDir := filepath.Join(base, "ns")
	pinned, err := podns.Pin(podns.Options{Dir: nsDir, Kinds: []podns.Kind{podns.Net}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { podns.Unpin(nsDir) })

	m := cni.New(cni.Options{ConfDir: confDir, CacheDir: filepath.Join(base, "cache")})
	id := "0123456789abcdef" + hex.EncodeToString(b[:])
	a, err := m.Prepare(cni.Pod{ID: id, NetNS: pinned.Path(podns.Net), Namespace: "ns", Name: "p", UID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Attach(ctx, a); err != nil {
		m.Detach(ctx, a)
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Detach(context.Background(), a) })
	_, ipnet, _ := net.ParseCIDR(subnet)
	if len(a.IPs) != 1 || !ipnet.Contains(net.ParseIP(a.IPs[0])) {
		t.Fatalf("pod IPs %v, want one in %s", a.IPs, subnet)
	}
	out, err := exec.Command(nsenter, "--net="+a.NetNS, "ip", "-o", "-4", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " "+a.IPs[0]+"/24 ") {
		t.Fatalf("eth0 in the pod: %v\n%s", err, out)
	}
	reservation := filepath.Join(ipamDir, name, a.IPs[0])
	if _, err := os.Stat(reservation); err != nil {
		t.Fatalf("host-local holds no reservation: %v", err)
	}

	if err := m.Detach(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(reservation); !os.IsNotExist(err) {
		t.Fatalf("reservation %s survived DEL: %v", reservation, err)
	}
	if ports, _ := os.ReadDir(filepath.Join("/sys/class/net", name, "brif")); len(ports) != 0 {
		t.Fatalf("veths left on the bridge after DEL: %d", len(ports))
	}
	if err := m.Detach(ctx, a); err != nil {
		t.Fatalf("second DEL: %v", err)
	}
	if err := podns.Unpin(nsDir); err != nil {
		t.Fatal(err)
	}
	if err := m.Detach(ctx, a); err != nil {
		t.Fatalf("DEL after the namespace is gone: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(base, "cache", "results")); len(entries) != 0 {
		t.Fatalf("libcni cache entries left: %d", len(entries))
	}
}
