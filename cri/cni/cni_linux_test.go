package cni_test

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
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
// testPod is a pod attached to a test network of its own (a masquerading bridge).
type testPod struct {
	m            *cni.Manager
	a            *cni.Attachment
	name, subnet string
	base, nsDir  string
	ipamDir      string
	nsenter      string
}

func attachTestPod(t *testing.T) *testPod {
	t.Helper()
	p := newTestPod(t)
	p.attach(t)
	return p
}

// newTestPod makes the network and the pod's namespace, not yet attached.
func newTestPod(t *testing.T) *testPod {
	t.Helper()
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
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() }) // absent unless an ADD made it
	confDir, ipamDir := filepath.Join(base, "net.d"), filepath.Join(base, "ipam")
	if err := os.Mkdir(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
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
	t.Cleanup(func() {
		if err := podns.Unpin(nsDir); err != nil {
			t.Error(err)
		}
	})

	m := cni.New(cni.Options{ConfDir: confDir, CacheDir: filepath.Join(base, "cache")})
	id := "0123456789abcdef" + hex.EncodeToString(b[:])
	a, err := m.Prepare(cni.Pod{ID: id, NetNS: pinned.Path(podns.Net), Namespace: "ns", Name: "p", UID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Detach(context.Background(), a) }) // best effort: the test detached it, or failed
	return &testPod{m: m, a: a, name: name, subnet: subnet, base: base, nsDir: nsDir, ipamDir: ipamDir, nsenter: nsenter}
}

func (p *testPod) attach(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.m.Attach(ctx, p.a); err != nil {
		_ = p.m.Detach(ctx, p.a) // best effort: the ADD's error is the failure
		t.Fatal(err)
	}
}

func ipLink(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"link"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip link %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func bridgeAddress(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/class/net", name, "address"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// A bridge whose address nobody set takes its ports' and is left with the null
// address when the last port goes: what an ADD that died (or failed) after it
// added the first veth, and the DEL after it, leave. The bridge plugin then
// failed every ADD ("could not set bridge's mac: invalid argument"); Attach
// gives the bridge an address first.
func TestAttachToABridgeWithTheNullAddress(t *testing.T) {
	p := newTestPod(t)
	var b [3]byte
	rand.Read(b[:])
	veth := "nkv" + hex.EncodeToString(b[:])
	ipLink(t, "add", "name", p.name, "type", "bridge")
	ipLink(t, "add", veth, "type", "veth", "peer", "name", veth+"p")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", veth).Run() }) // gone unless the test failed first
	ipLink(t, "set", veth, "master", p.name)
	ipLink(t, "del", veth)
	if got := bridgeAddress(t, p.name); got != "00:00:00:00:00:00" {
		t.Fatalf("bridge address %s after its last port went; the kernel no longer nulls it and this test proves nothing", got)
	}
	p.attach(t)
	if got := bridgeAddress(t, p.name); got == "00:00:00:00:00:00" {
		t.Fatalf("bridge address still null after ADD")
	}
	if len(p.a.IPs) != 1 {
		t.Fatalf("pod IPs %v", p.a.IPs)
	}
}

// An ADD that fails after the bridge plugin configured the pod's interface but
// before it made the masquerading rules (here: the bridge already has another
// gateway address) leaves a pod the plugin's DEL fails on ("Chain ... does not
// exist"); Detach still cleans it up: nothing is left reserved, attached or
// masqueraded.
func TestDetachAfterAFailedAdd(t *testing.T) {
	p := newTestPod(t)
	ipLink(t, "add", "name", p.name, "type", "bridge")
	if out, err := exec.Command("ip", "addr", "add", "192.0.2.1/24", "dev", p.name).CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := p.m.Attach(ctx, p.a)
	if err == nil || !strings.Contains(err.Error(), "already has an IP address") {
		t.Fatalf("ADD onto a bridge with another address: %v, want the plugin's refusal", err)
	}
	if err := p.m.Detach(ctx, p.a); err != nil {
		t.Fatalf("DEL after the failed ADD: %v", err)
	}
	if ports, _ := os.ReadDir(filepath.Join("/sys/class/net", p.name, "brif")); len(ports) != 0 {
		t.Fatalf("veths left on the bridge after DEL: %d", len(ports))
	}
	if held, _ := os.ReadDir(filepath.Join(p.ipamDir, p.name)); len(held) > 2 { // last_reserved_ip.0 and lock
		var names []string
		for _, e := range held {
			names = append(names, e.Name())
		}
		t.Fatalf("host-local still holds %v", names)
	}
	if rules := masqueradeRules(t, p.a.ContainerID); len(rules) != 0 {
		t.Fatalf("rules left: %q", rules)
	}
	if err := p.m.Detach(ctx, p.a); err != nil {
		t.Fatalf("second DEL: %v", err)
	}
}

func TestAttachDetach(t *testing.T) {
	p := attachTestPod(t)
	m, a, name, subnet, base, nsDir, ipamDir, nsenter := p.m, p.a, p.name, p.subnet, p.base, p.nsDir, p.ipamDir, p.nsenter
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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

// masqueradeRules lists the nat rules that mention the pod's container id.
func masqueradeRules(t *testing.T, id string) []string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -S: %v\n%s", err, out)
	}
	var rules []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, id) {
			rules = append(rules, l)
		}
	}
	return rules
}

// A DEL that cannot see the pod's interface (the namespace is gone, or an
// earlier DEL cut short by a crash removed it) leaves the bridge plugin's
// masquerading rules: Detach without a namespace, and Sweep, remove them.
func TestDetachSweepsMasquerade(t *testing.T) {
	p := attachTestPod(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if len(masqueradeRules(t, p.a.ContainerID)) == 0 {
		t.Fatal("the bridge plugin made no masquerading rule for the pod")
	}
	// An earlier DEL that died after it removed the interface.
	if out, err := exec.Command(p.nsenter, "--net="+p.a.NetNS, "ip", "link", "del", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("remove eth0: %v\n%s", err, out)
	}
	if err := p.m.Detach(ctx, p.a); err != nil {
		t.Fatal(err)
	}
	if rules := masqueradeRules(t, p.a.ContainerID); len(rules) == 0 {
		t.Fatal("DEL without the interface removed the rules: the sweep is not needed any more")
	}
	if err := p.m.Sweep(ctx, p.a); err != nil {
		t.Fatal(err)
	}
	if rules := masqueradeRules(t, p.a.ContainerID); len(rules) != 0 {
		t.Fatalf("rules left after Sweep: %q", rules)
	}

	// Again, with the namespace gone: Detach sweeps by itself.
	q := attachTestPod(t)
	if err := podns.Unpin(q.nsDir); err != nil {
		t.Fatal(err)
	}
	if err := q.m.Detach(ctx, q.a); err != nil {
		t.Fatal(err)
	}
	if rules := masqueradeRules(t, q.a.ContainerID); len(rules) != 0 {
		t.Fatalf("rules left after a DEL without the namespace: %q", rules)
	}
	if err := p.m.Sweep(ctx, p.a); err != nil {
		t.Fatalf("a second sweep: %v", err)
	}

	// A chain without its POSTROUTING jump (the plugin makes the chain first
	// and removes the jump first): swept too.
	r := attachTestPod(t)
	sum := sha512.Sum512([]byte(r.a.Network + r.a.ContainerID))
	chain := "CNI-" + hex.EncodeToString(sum[:])[:24]
	if out, err := exec.Command("nsenter", "--net="+r.a.NetNS, "ip", "link", "del", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("remove eth0: %v\n%s", err, out)
	}
	for _, ip := range r.a.IPs {
		comment := fmt.Sprintf("name: %q id: %q", r.a.Network, r.a.ContainerID)
		if out, err := exec.Command("iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "-s", ip, "-j", chain, "-m", "comment", "--comment", comment).CombinedOutput(); err != nil {
			t.Fatalf("remove the jump to %s: %v\n%s", chain, err, out)
		}
	}
	if err := r.m.Sweep(ctx, r.a); err != nil {
		t.Fatal(err)
	}
	if rules := masqueradeRules(t, r.a.ContainerID); len(rules) != 0 {
		t.Fatalf("rules left after Sweep of a chain without its jump: %q", rules)
	}
}
