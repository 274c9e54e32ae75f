package cri_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodekit-dev/nodekit/cri/cni"
	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// testNetwork is one test's own CNI network: a configuration directory, a bridge, a
// /24 subnet and a host-local data directory nobody else uses, so tests (and test
// packages running in parallel) never share addresses or rules.
type testNetwork struct {
	t       *testing.T
	name    string // network and bridge name
	confDir string
	ipamDir string
	subnet  *net.IPNet
	// hadPortmapChains: portmap's shared chains existed before the test.
	hadPortmapChains bool
}

// cniBinDirs are the plugin directories tests use: the defaults, where Debian's
// containernetworking-plugins installs them.
var cniBinDirs = cni.DefaultBinDirs

// newTestNetwork writes a configuration like the default one `make setup` installs
// (bridge, host-local, portmap, loopback) under base.
func newTestNetwork(t *testing.T, base string) *testNetwork {
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if !pluginInstalled(p) {
			testenv.Skip(t, "CNI plugin "+p+" not found in "+strings.Join(cniBinDirs, ":")+"; run `sudo make setup` (containernetworking-plugins)")
		}
	}
	testenv.LookPath(t, "iptables-save")
	testenv.LookPath(t, "ip")
	var b [4]byte
	rand.Read(b[:])
	n := &testNetwork{
		t:       t,
		name:    "nk" + hex.EncodeToString(b[:]), // bridge names have at most 15 bytes
		confDir: filepath.Join(base, "net.d"),
		ipamDir: filepath.Join(base, "ipam"),
		subnet:  freeSubnet(t),
	}
	n.hadPortmapChains = portmapChainsExist(t)
	if err := os.MkdirAll(n.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.confDir, "10-test.conflist"), n.conflist(), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

func pluginInstalled(name string) bool {
	for _, d := range cniBinDirs {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return true
		}
	}
	return false
}

// conflist is the test network's configuration.
func (n *testNetwork) conflist() []byte {
	data, err := json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       n.name,
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": n.name, "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": n.subnet.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": n.ipamDir,
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
			map[string]any{"type": "loopback"},
		},
	}, "", "  ")
	if err != nil {
		n.t.Fatal(err)
	}
	return data
}

// freeSubnet picks a random 10.x.y.0/24 that no interface on the node is in.
func freeSubnet(t *testing.T) *net.IPNet {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		var b [2]byte
		rand.Read(b[:])
		sub := &net.IPNet{IP: net.IPv4(10, 64+b[0]%64, b[1], 0).To4(), Mask: net.CIDRMask(24, 32)}
		free := true
		for _, a := range addrs {
			if in, ok := a.(*net.IPNet); ok && (in.Contains(sub.IP) || sub.Contains(in.IP)) {
				free = false
			}
		}
		if free {
			return sub
		}
	}
	t.Fatal("no free 10.x.y.0/24 subnet for the test network")
	return nil
}

// prefix is the subnet's first three octets with the dot ("10.77.3."), to find
// the subnet's addresses in command output.
func (n *testNetwork) prefix() string {
	s := n.subnet.IP.String()
	return s[:strings.LastIndexByte(s, '.')+1]
}

// reservations lists the addresses host-local holds in the test network.
func (n *testNetwork) reservations() []string {
	entries, _ := os.ReadDir(filepath.Join(n.ipamDir, n.name))
	var out []string
	for _, e := range entries {
		if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
			out = append(out, e.Name())
		}
	}
	return out
}

// bridgePorts lists the interfaces (veths) attached to the test bridge.
func (n *testNetwork) bridgePorts() []string {
	entries, _ := os.ReadDir(filepath.Join("/sys/class/net", n.name, "brif"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// vethsOnBridge lists `ip -o link` lines of veths whose master is the test bridge.
func (n *testNetwork) vethsOnBridge() []string {
	out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").CombinedOutput()
	if err != nil {
		n.t.Fatalf("ip -o link: %v\n%s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " master "+n.name+" ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// natRules returns the nat table's lines that belong to the test network: rules
// mentioning its subnet or its name (the plugins' comments), and any declaration of
// or jump to the per-pod chains of the sandboxes ids (even if empty).
func (n *testNetwork) natRules(ids ...string) []string {
	n.t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		n.t.Fatalf("iptables-save -t nat: %v", err)
	}
	var chains []string
	for _, id := range ids {
		chains = append(chains, n.podChains(id)...)
	}
	var hits []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, n.prefix()) || strings.Contains(l, n.name) || slices.ContainsFunc(chains, func(c string) bool { return strings.Contains(l, c) }) {
			hits = append(hits, l)
		}
	}
	return hits
}

// podChains are the names of the nat chains the plugins make for one pod: the
// bridge's masquerade chain and portmap's DNAT chain (the plugins name them
// CNI-[DN-]<sha512(network name + container id)>, cut to 28 characters).
func (n *testNetwork) podChains(id string) []string {
	sum := fmt.Sprintf("%x", sha512.Sum512([]byte(n.name+id)))
	return []string{("CNI-" + sum)[:28], ("CNI-DN-" + sum)[:28]}
}

// portmapChainsExist reports whether portmap's shared chains are in the nat table.
func portmapChainsExist(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatalf("iptables-save -t nat: %v", err)
	}
	return bytes.Contains(out, []byte(":CNI-HOSTPORT-DNAT "))
}

// leaks lists what the network still holds: address reservations, bridge ports,
// NAT rules.
func (n *testNetwork) leaks() []string {
	var out []string
	if r := n.reservations(); len(r) > 0 {
		out = append(out, fmt.Sprintf("host-local reservations %v", r))
	}
	if p := n.bridgePorts(); len(p) > 0 {
		out = append(out, fmt.Sprintf("interfaces on bridge %s: %v", n.name, p))
	}
	if r := n.natRules(); len(r) > 0 {
		out = append(out, fmt.Sprintf("nat rules %q", r))
	}
	return out
}

// remove deletes the test bridge (the plugins leave it behind on purpose), any NAT
// rule of the network a failed test left, and portmap's shared chains if this test
// created them and no other network uses them.
func (n *testNetwork) remove() {
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.name)); err == nil {
		if out, err := exec.Command("ip", "link", "del", n.name).CombinedOutput(); err != nil {
			n.t.Errorf("delete test bridge %s: %v\n%s", n.name, err, out)
		}
	}
	rules := n.natRules()
	var chains []string
	for _, r := range rules {
		if args := splitRule(r); len(args) > 2 && args[0] == "-A" {
			deleteNATRule(n.t, args[1:])
			if j := ruleTarget(args); strings.HasPrefix(j, "CNI-") && !strings.HasPrefix(j, "CNI-HOSTPORT-") {
				chains = append(chains, j)
			}
		}
	}
	for _, c := range chains {
		exec.Command("iptables", "-t", "nat", "-F", c).Run()
		exec.Command("iptables", "-t", "nat", "-X", c).Run()
	}
	if !n.hadPortmapChains {
		removePortmapChains(n.t)
	}
}

// portmapChains are the chains the portmap plugin creates once and never deletes.
var portmapChains = []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"}

// removePortmapChains deletes portmap's shared chains and the rules that jump to
// them, unless some pod's port forwarding still hangs off CNI-HOSTPORT-DNAT.
func removePortmapChains(t *testing.T) {
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil || !bytes.Contains(out, []byte(":CNI-HOSTPORT-DNAT ")) {
		return
	}
	var jumps [][]string
	for _, l := range strings.Split(string(out), "\n") {
		args := splitRule(l)
		if len(args) < 2 || args[0] != "-A" {
			continue
		}
		if args[1] == "CNI-HOSTPORT-DNAT" {
			return // in use
		}
		if slices.Contains(portmapChains, ruleTarget(args)) {
			jumps = append(jumps, args[1:])
		}
	}
	for _, j := range jumps {
		deleteNATRule(t, j)
	}
	for _, c := range portmapChains {
		exec.Command("iptables", "-t", "nat", "-F", c).Run()
		exec.Command("iptables", "-t", "nat", "-X", c).Run()
	}
}

func deleteNATRule(t *testing.T, rule []string) {
	args := append([]string{"-w", "-t", "nat", "-D"}, rule...)
	if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
		t.Logf("iptables %q: %v\n%s", args, err, out)
	}
}

// ruleTarget returns the -j target of an iptables-save rule.
func ruleTarget(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-j" {
			return args[i+1]
		}
	}
	return ""
}

// splitRule splits an iptables-save line into arguments: spaces separate them,
// double quotes group them, a backslash escapes a quote.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			inQuote, have = !inQuote, true
		case c == ' ' && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}

// cniFlags are the nodekit-cri flags that select the test network.
func (h *harness) cniFlags() []string {
	return []string{"--cni-conf-dir", h.net.confDir, "--cni-bin-dir", strings.Join(cniBinDirs, ":")}
}

func TestSplitRule(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`-A POSTROUTING -s 10.1.2.3/32 -j CNI-abc`, []string{"-A", "POSTROUTING", "-s", "10.1.2.3/32", "-j", "CNI-abc"}},
		{
			`-A CNI-x -d 10.1.2.0/24 -m comment --comment "name: \"nk1\" id: \"ab\"" -j ACCEPT`,
			[]string{"-A", "CNI-x", "-d", "10.1.2.0/24", "-m", "comment", "--comment", `name: "nk1" id: "ab"`, "-j", "ACCEPT"},
		},
		{`-A X --comment ""`, []string{"-A", "X", "--comment", ""}},
	}
	for _, tc := range tests {
		if got := splitRule(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("splitRule(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
	if got := ruleTarget(splitRule(tests[1].line)); got != "ACCEPT" {
		t.Errorf("ruleTarget = %q", got)
	}
}
