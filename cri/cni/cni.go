package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// Defaults for Options.
var (
	DefaultConfDir = "/etc/cni/net.d"
	DefaultBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
)

// DefaultIfName is the pod's interface name.
const DefaultIfName = "eth0"

// ErrNotReady is wrapped by every error that means no usable network configuration
// is loaded: the directory is empty or missing, the first file does not parse, or a
// plugin it names is not installed.
var ErrNotReady = errors.New("network plugin not ready")

// Options configures a Manager. Zero values pick the documented defaults.
type Options struct {
	// ConfDir holds the network configurations (default /etc/cni/net.d).
	ConfDir string
	// BinDirs are searched for plugins (default /usr/lib/cni, /opt/cni/bin).
	BinDirs []string
	// CacheDir is where libcni keeps each attachment's result, which DEL hands
	// back to the plugins (default libcni's /var/lib/cni).
	CacheDir string
	// IfName is the interface created in the pod (default eth0).
	IfName string
}

// Manager loads the network configuration and attaches pods to it. It is safe for
// concurrent use.
type Manager struct {
	opts Options
	cni  *libcni.CNIConfig

	mu     sync.Mutex
	loaded bool
	sig    string // what the directory looked like when cur was loaded
	cur    *network
	err    error
}

// New returns a Manager. It reads nothing yet: the configuration is loaded at the
// first call that needs it, and reloaded whenever the directory changes.
func New(o Options) *Manager {
	if o.ConfDir == "" {
		o.ConfDir = DefaultConfDir
	}
	if len(o.BinDirs) == 0 {
		o.BinDirs = slices.Clone(DefaultBinDirs)
	}
	if o.IfName == "" {
		o.IfName = DefaultIfName
	}
	return &Manager{opts: o, cni: libcni.NewCNIConfigWithCacheDir(o.BinDirs, o.CacheDir, newPluginExec())}
}

// ConfDir returns the configuration directory.
func (m *Manager) ConfDir() string { return m.opts.ConfDir }

// Config describes the network configuration in use.
type Config struct {
	File       string   // the file it was loaded from
	Name       string   // the network name
	CNIVersion string   // the spec version the plugins are called with
	Plugins    []string // plugin types, in the order ADD runs them
}

// Config returns the network configuration pods are attached to now, loading it
// again if the directory changed. The error wraps ErrNotReady.
func (m *Manager) Config() (Config, error) {
	n, err := m.network()
	if err != nil {
		return Config{}, err
	}
	return n.config, nil
}

// Pod says which pod to attach.
type Pod struct {
	ID        string // the sandbox id: CNI's container id
	NetNS     string // path of the pod's pinned network namespace
	Namespace string // Kubernetes namespace, name and uid, passed as K8S_POD_* args
	Name      string
	UID       string
	Ports     []PortMapping // host ports (the portMappings capability)
}

// PortMapping is one host port forwarded to the pod, as the portmap plugin takes
// it.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"` // tcp, udp or sctp
	HostIP        string `json:"hostIP,omitempty"`
}

// Attachment is one pod attached to one network: what DEL needs to undo it, and
// what ADD returned. Persist it (it is JSON) to tear down after a restart.
type Attachment struct {
	Network     string          `json:"network"`
	File        string          `json:"file"`   // the configuration file it came from
	Config      json.RawMessage `json:"config"` // the configuration list used, self-contained
	ContainerID string          `json:"containerId"`
	NetNS       string          `json:"netns"`
	IfName      string          `json:"ifName"`
	Args        [][2]string     `json:"args"`
	Ports       []PortMapping   `json:"portMappings,omitempty"`
	// IPs are the pod's addresses on IfName, IPv4 first; set by Attach.
	IPs []string `json:"ips,omitempty"`
}

// Prepare resolves what attaching pod means with the current configuration. It has
// no effect on the node; Attach does the work. The error wraps ErrNotReady when
// no configuration is loadable.
func (m *Manager) Prepare(pod Pod) (*Attachment, error) {
	if pod.ID == "" || pod.NetNS == "" {
		return nil, fmt.Errorf("cni: pod needs an id and a network namespace")
	}
	n, err := m.network()
	if err != nil {
		return nil, err
	}
	return &Attachment{
		Network:     n.list.Name,
		File:        n.config.File,
		Config:      slices.Clone(n.list.Bytes),
		ContainerID: pod.ID,
		NetNS:       pod.NetNS,
		IfName:      m.opts.IfName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pod.ID},
			{"K8S_POD_UID", pod.UID},
		},
		Ports: slices.Clone(pod.Ports),
	}, nil
}

// Attach runs CNI ADD for a and records the pod's addresses in a.IPs. After an
// error the plugins may have done part of their work: call Detach.
func (m *Manager) Attach(ctx context.Context, a *Attachment) error {
	list, rt, err := m.invocation(a, a.NetNS)
	if err != nil {
		return err
	}
	if err := pinBridgeMACs(a.Config); err != nil {
		return fmt.Errorf("cni: add pod %s to network %s: %w", a.ContainerID, a.Network, err)
	}
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		return fmt.Errorf("cni: add pod %s to network %s: %w", a.ContainerID, a.Network, err)
	}
	ips, err := podIPs(res)
	if err != nil {
		return fmt.Errorf("cni: add pod %s to network %s: %w", a.ContainerID, a.Network, err)
	}
	if len(ips) == 0 {
		return fmt.Errorf("cni: add pod %s to network %s: the plugins returned no address for %s", a.ContainerID, a.Network, a.IfName)
	}
	a.IPs = ips
	return nil
}

// Detach runs CNI DEL for a, with the configuration it was attached with. It is
// idempotent, and works after the pod's network namespace is gone (the plugins
// then release what lives outside it: addresses, host ports, NAT rules).
func (m *Manager) Detach(ctx context.Context, a *Attachment) error {
	netns := a.NetNS
	if !isNetNS(netns) {
		netns = "" // gone: the spec lets DEL run without one
	}
	list, rt, err := m.invocation(a, netns)
	if err != nil {
		return err
	}
	sweep := netns == ""
	if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
		// A DEL can fail part-way, after it removed the pod's interface: the
		// bridge plugin (1.1) fails on the masquerading rules of a pod whose
		// ADD failed before it made them. Run it again: without the interface
		// the plugins have nothing left to find, and the sweep below removes
		// the rules they could not tell were the pod's.
		if err2 := m.cni.DelNetworkList(ctx, list, rt); err2 != nil {
			return fmt.Errorf("cni: remove pod %s from network %s: %w", a.ContainerID, a.Network, err)
		}
		sweep = true
	}
	if sweep {
		// Without the pod's interface the plugins could not tell its addresses.
		return m.Sweep(ctx, a)
	}
	return nil
}

func (m *Manager) invocation(a *Attachment, netns string) (*libcni.NetworkConfigList, *libcni.RuntimeConf, error) {
	list, err := libcni.NetworkConfFromBytes(a.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("cni: configuration of network %q for pod %s: %w", a.Network, a.ContainerID, err)
	}
	rt := &libcni.RuntimeConf{
		ContainerID: a.ContainerID,
		NetNS:       netns,
		IfName:      a.IfName,
		Args:        a.Args,
	}
	if len(a.Ports) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": a.Ports}
	}
	return list, rt, nil
}

// podIPs picks the addresses ADD gave the pod's own interfaces: not the host side
// of a veth, not loopback. IPv4 comes first, as the kubelet expects its primary
// family first on a single-stack IPv4 node.
func podIPs(res types.Result) ([]string, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("read the plugins' result: %w", err)
	}
	var v4, v6 []string
	for _, ip := range r.IPs {
		if ip.Interface != nil {
			i := *ip.Interface
			if i < 0 || i >= len(r.Interfaces) || r.Interfaces[i].Sandbox == "" || r.Interfaces[i].Name == "lo" {
				continue
			}
		}
		if ip.Address.IP == nil || ip.Address.IP.IsLoopback() {
			continue
		}
		if v4ip := ip.Address.IP.To4(); v4ip != nil {
			v4 = append(v4, v4ip.String())
		} else {
			v6 = append(v6, ip.Address.IP.String())
		}
	}
	return append(v4, v6...), nil
}
