package agent_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
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

// testNetwork is one test's own CNI network (as in the cri package's tests): a
// configuration directory, a bridge, a /24 and a host-local data directory
// nobody else uses, so tests and test packages running in parallel never share
// addresses or rules.
type testNetwork struct {
	t       *testing.T
	name    string // network and bridge name
	confDir string
	ipamDir string
	subnet  *net.IPNet
	// hadPortmapChains: portmap's shared chains existed before the test.
	hadPortmapChains bool
}

// cniBinDirs are where Debian's containernetworking-plugins install.
var cniBinDirs = cni.DefaultBinDirs

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
		name:    "nka" + hex.EncodeToString(b[:]), // bridge names have at most 15 bytes
		confDir: filepath.Join(base, "net.d"),
		ipamDir: filepath.Join(base, "ipam"),
		subnet:  freeSubnet(t),
	}
	n.hadPortmapChains = portmapChainsExist(t)
	if err := os.MkdirAll(n.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
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
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.confDir, "10-test.conflist"), data, 0o644); err != nil {
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

// freeSubnet picks a random 10.x.y.0/24 that no interface on the node is in.
func freeSubnet(t *testing.T) *net.IPNet {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		var b [2]byte
		rand.Read(b[:])
		sub := &net.IPNet{IP: net.IPv4(10, 128+b[0]%64, b[1], 0).To4(), Mask: net.CIDRMask(24, 32)}
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

// contains reports whether ip is in the test network.
func (n *testNetwork) contains(ip string) bool {
	p := net.ParseIP(ip)
	return p != nil && n.subnet.Contains(p)
}

// prefix is the subnet's first three octets with the dot ("10.130.3.").
func (n *testNetwork) prefix() string {
	s := n.subnet.IP.String()
	return s[:strings.LastIndexByte(s, '.')+1]
}

// leaks lists what the network still holds: address reservations, bridge
// ports, NAT rules.
func (n *testNetwork) leaks() []string {
	var out []string
	entries, _ := os.ReadDir(filepath.Join(n.ipamDir, n.name))
	var reserved []string
	for _, e := range entries {
		if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
			reserved = append(reserved, e.Name())
		}
	}
	if len(reserved) > 0 {
		out = append(out, fmt.Sprintf("host-local reservations %v", reserved))
	}
	ports, _ := os.ReadDir(filepath.Join("/sys/class/net", n.name, "brif"))
	if len(ports) > 0 {
		var names []string
		for _, p := range ports {
			names = append(names, p.Name())
		}
		out = append(out, fmt.Sprintf("interfaces on bridge %s: %v", n.name, names))
	}
	if r := n.natRules(); len(r) > 0 {
		out = append(out, fmt.Sprintf("nat rules %q", r))
	}
	return out
}

// natRules returns the nat table's lines that mention the network's subnet or
// name (the plugins' rule comments).
func (n *testNetwork) natRules() []string {
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		n.t.Errorf("iptables-save -t nat: %v", err)
		return nil
	}
	var hits []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, n.prefix()) || strings.Contains(l, `\"`+n.name+`\"`) {
			hits = append(hits, l)
		}
	}
	return hits
}

// remove deletes the test bridge (the plugins leave it on purpose), any NAT
// rule of the network a failed test left, and portmap's shared chains if this
// test created them and nothing uses them.
func (n *testNetwork) remove() {
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.name)); err == nil {
		if out, err := exec.Command("ip", "link", "del", n.name).CombinedOutput(); err != nil {
			n.t.Errorf("delete test bridge %s: %v\n%s", n.name, err, out)
		}
	}
	var chains []string
	for _, r := range n.natRules() {
		if args := splitRule(r); len(args) > 2 && args[0] == "-A" {
			deleteNATRule(n.t, args[1:])
			if j := ruleTarget(args); strings.HasPrefix(j, "CNI-") && !strings.HasPrefix(j, "CNI-HOSTPORT-") {
				chains = append(chains, j)
			}
		}
	}
	for _, c := range chains {
		exec.Command("iptables", "-w", "-t", "nat", "-F", c).Run()
		exec.Command("iptables", "-w", "-t", "nat", "-X", c).Run()
	}
	if !n.hadPortmapChains {
		removePortmapChains(n.t)
	}
}

func portmapChainsExist(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatalf("iptables-save -t nat: %v", err)
	}
	return bytes.Contains(out, []byte(":CNI-HOSTPORT-DNAT "))
}

var portmapChains = []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"}

// removePortmapChains deletes portmap's shared chains and the jumps to them,
// unless some pod's port forwarding still hangs off CNI-HOSTPORT-DNAT.
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
		exec.Command("iptables", "-w", "-t", "nat", "-F", c).Run()
		exec.Command("iptables", "-w", "-t", "nat", "-X", c).Run()
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
