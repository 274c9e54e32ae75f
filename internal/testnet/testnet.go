package testnet

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

// BinDirs are the plugin directories the test networks use: the defaults, where
// Debian's containernetworking-plugins installs them.
var BinDirs = cni.DefaultBinDirs

// Plugins are the plugins of the test network's configuration.
var Plugins = []string{"bridge", "host-local", "portmap", "loopback"}

// Network is one test's own CNI network.
type Network struct {
	t *testing.T
	// Name is the network's and its bridge's name.
	Name string
	// ConfDir holds the configuration, 10-test.conflist.
	ConfDir string
	// IPAMDir is host-local's data directory.
	IPAMDir string
	// Subnet is the network's /24.
	Subnet *net.IPNet
	// hadPortmapChains: portmap's shared chains existed before the test.
	hadPortmapChains bool
}

// New writes a configuration like the default one `make setup` installs
// (bridge, host-local, portmap, loopback) into a directory of the test's own.
// The network's name is prefix (at most 7 bytes: a bridge name has at most 15)
// followed by 8 random hex digits; its subnet is a random 10.x.y.0/24 inside
// pool that no interface of the node is in (test packages running in parallel
// use different pools). It skips when a plugin, iptables-save or ip is missing.
//
// The network's cleanup, registered with t.Cleanup, fails the test for what the
// network still holds (see Leaks) and then removes it (see the package
// documentation); it runs after the cleanups registered later, so a harness
// that stops its pods in cleanups creates the network first.
func New(t *testing.T, prefix, pool string) *Network {
	t.Helper()
	if len(prefix) > 7 {
		t.Fatalf("testnet: network name prefix %q is longer than 7 bytes", prefix)
	}
	_, within, err := net.ParseCIDR(pool)
	if err != nil {
		t.Fatalf("testnet: subnet pool: %v", err)
	}
	for _, p := range Plugins {
		if !pluginInstalled(p) {
			testenv.Skip(t, "CNI plugin "+p+" not found in "+strings.Join(BinDirs, ":")+"; run `sudo make setup` (containernetworking-plugins)")
		}
	}
	testenv.LookPath(t, "iptables-save")
	testenv.LookPath(t, "ip")
	var b [4]byte
	rand.Read(b[:])
	dir := t.TempDir()
	n := &Network{
		t:       t,
		Name:    prefix + hex.EncodeToString(b[:]),
		ConfDir: filepath.Join(dir, "net.d"),
		IPAMDir: filepath.Join(dir, "ipam"),
		Subnet:  freeSubnet(t, within),
	}
	n.hadPortmapChains = portmapChainsExist(t)
	if err := os.MkdirAll(n.ConfDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.ConfDir, "10-test.conflist"), n.Conflist(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.AssertClean()
		n.remove()
	})
	return n
}

func pluginInstalled(name string) bool {
	for _, d := range BinDirs {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return true
		}
	}
	return false
}

// PluginDir returns the first of BinDirs that holds the bridge plugin (for a
// runtime that takes a single plugin directory).
func PluginDir() string {
	for _, d := range BinDirs {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			return d
		}
	}
	return ""
}

// Conflist is the network's configuration, as New wrote it.
func (n *Network) Conflist() []byte {
	data, err := json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       n.Name,
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": n.Name, "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": n.Subnet.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": n.IPAMDir,
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

// freeSubnet picks a random 10.x.y.0/24 inside pool that no interface on the
// node is in.
func freeSubnet(t *testing.T, pool *net.IPNet) *net.IPNet {
	t.Helper()
	ones, bits := pool.Mask.Size()
	if pool.IP.To4() == nil || bits != 32 || ones > 24 {
		t.Fatalf("testnet: subnet pool %s is not an IPv4 range of /24s", pool)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	base := pool.IP.To4()
	for range 100 {
		var b [4]byte
		rand.Read(b[:])
		ip := make(net.IP, 4)
		for i := range ip {
			// The pool's bits, then random ones down to the /24.
			ip[i] = base[i] | b[i]&^pool.Mask[i]
		}
		ip[3] = 0
		sub := &net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}
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
	t.Fatalf("no free /24 subnet in %s for the test network", pool)
	return nil
}

// Contains reports whether ip is in the network's subnet.
func (n *Network) Contains(ip string) bool {
	p := net.ParseIP(ip)
	return p != nil && n.Subnet.Contains(p)
}

// prefix is the subnet's first three octets with the dot ("10.77.3."), to find
// the subnet's addresses in command output.
func (n *Network) prefix() string {
	s := n.Subnet.IP.String()
	return s[:strings.LastIndexByte(s, '.')+1]
}

// Reservations lists the addresses host-local holds in the network.
func (n *Network) Reservations() []string {
	entries, _ := os.ReadDir(filepath.Join(n.IPAMDir, n.Name))
	var out []string
	for _, e := range entries {
		if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
			out = append(out, e.Name())
		}
	}
	return out
}

// BridgePorts lists the interfaces (veths) attached to the network's bridge.
func (n *Network) BridgePorts() []string {
	entries, _ := os.ReadDir(filepath.Join("/sys/class/net", n.Name, "brif"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// VethsOnBridge lists `ip -o link` lines of veths whose master is the bridge.
func (n *Network) VethsOnBridge() []string {
	n.t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").CombinedOutput()
	if err != nil {
		n.t.Fatalf("ip -o link: %v\n%s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " master "+n.Name+" ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// NATRules returns the nat table's lines that belong to the network: rules
// mentioning its subnet or its name (the plugins' comments), and any
// declaration of or jump to the per-pod chains of the sandboxes ids (even if
// empty).
func (n *Network) NATRules(ids ...string) []string {
	n.t.Helper()
	rules, err := n.natRules(ids...)
	if err != nil {
		n.t.Fatal(err)
	}
	return rules
}

func (n *Network) natRules(ids ...string) ([]string, error) {
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		return nil, fmt.Errorf("iptables-save -t nat: %v", err)
	}
	var chains []string
	for _, id := range ids {
		chains = append(chains, n.PodChains(id)...)
	}
	var hits []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, n.prefix()) || strings.Contains(l, n.Name) || slices.ContainsFunc(chains, func(c string) bool { return strings.Contains(l, c) }) {
			hits = append(hits, l)
		}
	}
	return hits, nil
}

// PodChains are the names of the nat chains the plugins make for one pod: the
// bridge's masquerade chain and portmap's DNAT chain (the plugins name them
// CNI-[DN-]<sha512(network name + container id)>, cut to 28 characters).
func (n *Network) PodChains(id string) []string {
	sum := fmt.Sprintf("%x", sha512.Sum512([]byte(n.Name+id)))
	return []string{("CNI-" + sum)[:28], ("CNI-DN-" + sum)[:28]}
}

// Leaks lists what the network still holds: address reservations, bridge
// ports, NAT rules.
func (n *Network) Leaks() []string {
	var out []string
	if r := n.Reservations(); len(r) > 0 {
		out = append(out, fmt.Sprintf("host-local reservations %v", r))
	}
	if p := n.BridgePorts(); len(p) > 0 {
		out = append(out, fmt.Sprintf("interfaces on bridge %s: %v", n.Name, p))
	}
	r, err := n.natRules()
	if err != nil {
		out = append(out, err.Error())
	}
	if len(r) > 0 {
		out = append(out, fmt.Sprintf("nat rules %q", r))
	}
	return out
}

// AssertClean fails the test for everything Leaks lists.
func (n *Network) AssertClean() {
	n.t.Helper()
	for _, l := range n.Leaks() {
		n.t.Errorf("leaked pod network resources: %s", l)
	}
}

// remove deletes the bridge (the plugins leave it behind on purpose), any NAT
// rule of the network a failed test left, and portmap's shared chains if this
// test created them and no other network uses them.
func (n *Network) remove() {
	t := n.t
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.Name)); err == nil {
		if out, err := exec.Command("ip", "link", "del", n.Name).CombinedOutput(); err != nil {
			t.Errorf("delete test bridge %s: %v\n%s", n.Name, err, out)
		}
	}
	rules, err := n.natRules()
	if err != nil {
		t.Error(err)
	}
	var chains []string
	for _, r := range rules {
		if args := splitRule(r); len(args) > 2 && args[0] == "-A" {
			deleteNATRule(t, args[1:])
			if j := ruleTarget(args); strings.HasPrefix(j, "CNI-") && !strings.HasPrefix(j, "CNI-HOSTPORT-") {
				chains = append(chains, j)
			}
		}
	}
	for _, c := range chains {
		removeChain(c)
	}
	if !n.hadPortmapChains {
		removePortmapChains(t)
	}
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
		removeChain(c)
	}
}

// removeChain flushes and deletes a nat chain, if it is there.
func removeChain(c string) {
	// Both fail when the chain is not there, which is fine.
	_ = exec.Command("iptables", "-w", "-t", "nat", "-F", c).Run()
	_ = exec.Command("iptables", "-w", "-t", "nat", "-X", c).Run()
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
