package podruntime

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-helpers/node/util/sysctl"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodLogsDir returns the CRI log directory of a pod: <podLogsDir>/<ns>_<name>_<uid>.
func PodLogsDir(podLogsDir, namespace, name string, uid types.UID) string {
	return filepath.Join(podLogsDir, namespace+"_"+name+"_"+string(uid))
}

// podDir is <root>/pods/<uid>.
func (m *Manager) podDir(uid types.UID) string {
	return filepath.Join(m.rootDir, "pods", string(uid))
}

// SandboxConfig returns the CRI sandbox config of pod for the given attempt
// (the kubelet's generatePodSandboxConfig).
func (m *Manager) SandboxConfig(pod *v1.Pod, attempt uint32) (*runtimeapi.PodSandboxConfig, error) {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt,
		},
		LogDirectory: PodLogsDir(m.podLogsDir, pod.Namespace, pod.Name, pod.UID),
		Labels:       podLabels(pod),
		Annotations:  podAnnotations(pod),
	}
	dns, err := m.dnsConfig(pod)
	if err != nil {
		return nil, err
	}
	cfg.DnsConfig = dns
	if !pod.Spec.HostNetwork {
		h, err := m.hostname(pod)
		if err != nil {
			return nil, err
		}
		cfg.Hostname = h
	}
	cfg.PortMappings = portMappings(pod)

	sc := pod.Spec.SecurityContext
	if sc == nil {
		sc = &v1.PodSecurityContext{}
	}
	if pod.Spec.HostUsers != nil && !*pod.Spec.HostUsers {
		return nil, fmt.Errorf("spec.hostUsers: user namespaces are not supported")
	}
	lsc := &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{
			Network: networkMode(pod), Pid: pidMode(pod), Ipc: ipcMode(pod),
		},
		Privileged: hasPrivileged(pod),
		// The sandbox itself always runs with the runtime's default profile.
		Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
	}
	if sc.RunAsUser != nil {
		lsc.RunAsUser = &runtimeapi.Int64Value{Value: *sc.RunAsUser}
	}
	if sc.RunAsGroup != nil {
		lsc.RunAsGroup = &runtimeapi.Int64Value{Value: *sc.RunAsGroup}
	}
	lsc.SupplementalGroups = supplementalGroups(sc)
	if o := sc.SELinuxOptions; o != nil {
		lsc.SelinuxOptions = &runtimeapi.SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
	}
	lc := &runtimeapi.LinuxPodSandboxConfig{
		CgroupParent:    m.cgroupParent(pod),
		SecurityContext: lsc,
		Sysctls:         map[string]string{},
	}
	for _, s := range sc.Sysctls {
		lc.Sysctls[sysctlDots(s.Name)] = s.Value
	}
	lc.Resources, lc.Overhead = m.sandboxResources(pod)
	cfg.Linux = lc
	return cfg, nil
}

func supplementalGroups(sc *v1.PodSecurityContext) []int64 {
	var g []int64
	if sc.FSGroup != nil {
		g = append(g, *sc.FSGroup)
	}
	return append(g, sc.SupplementalGroups...)
}

// sysctlDots writes a sysctl name with dots as separators, as runc wants, by
// the kubelet's rule (sysctl.NormalizeName): a name whose first separator is a
// slash gets its slashes and dots swapped (net/ipv4/conf/eno2.100/rp_filter
// becomes net.ipv4.conf.eno2/100.rp_filter); one whose first separator is a
// dot is already written so and kept.
func sysctlDots(name string) string {
	return sysctl.NormalizeName(name)
}

func hasPrivileged(pod *v1.Pod) bool {
	for _, l := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range l {
			if sc := l[i].SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
				return true
			}
		}
	}
	return false
}

// portMappings are the host ports the pod's containers (and sidecars) ask for.
func portMappings(pod *v1.Pod) []*runtimeapi.PortMapping {
	var out []*runtimeapi.PortMapping
	add := func(c *v1.Container) {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			out = append(out, &runtimeapi.PortMapping{
				Protocol:      protocol(p.Protocol),
				ContainerPort: p.ContainerPort,
				HostPort:      p.HostPort,
				HostIp:        p.HostIP,
			})
		}
	}
	for i := range pod.Spec.InitContainers {
		if isRestartableInit(&pod.Spec.InitContainers[i]) {
			add(&pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	return out
}

func protocol(p v1.Protocol) runtimeapi.Protocol {
	switch p {
	case v1.ProtocolUDP:
		return runtimeapi.Protocol_UDP
	case v1.ProtocolSCTP:
		return runtimeapi.Protocol_SCTP
	}
	return runtimeapi.Protocol_TCP
}

// hostname is the pod's host name: spec.hostname or the pod name, cut to 63
// characters; with setHostnameAsFQDN and a subdomain, the FQDN.
func (m *Manager) hostname(pod *v1.Pod) (string, error) {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	if pod.Spec.SetHostnameAsFQDN != nil && *pod.Spec.SetHostnameAsFQDN && pod.Spec.Subdomain != "" && m.clusterDomain != "" {
		fqdn := fmt.Sprintf("%s.%s.%s.svc.%s", h, pod.Spec.Subdomain, pod.Namespace, m.clusterDomain)
		if len(fqdn) > 64 {
			return "", fmt.Errorf("spec.setHostnameAsFQDN: host name %q is longer than 64 characters", fqdn)
		}
		return fqdn, nil
	}
	return h, nil
}

// dnsConfig is the pod's resolver configuration, nil to let the runtime use the
// host's. ClusterFirst pods use the cluster DNS when one is configured and the
// host's otherwise (as the kubelet falls back); dnsPolicy None takes the pod's
// dnsConfig only; a pod dnsConfig is merged into the others.
func (m *Manager) dnsConfig(pod *v1.Pod) (*runtimeapi.DNSConfig, error) {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = v1.DNSClusterFirst
	}
	if policy == v1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = v1.DNSDefault
	}
	if policy == v1.DNSClusterFirstWithHostNet {
		policy = v1.DNSClusterFirst
	}
	if policy == v1.DNSClusterFirst && len(m.clusterDNS) == 0 {
		policy = v1.DNSDefault
	}
	var cfg *runtimeapi.DNSConfig
	switch policy {
	case v1.DNSNone:
		cfg = &runtimeapi.DNSConfig{}
	case v1.DNSClusterFirst:
		host, err := readResolvConf(m.resolvConf)
		if err != nil {
			return nil, err
		}
		cfg = &runtimeapi.DNSConfig{Servers: slices.Clone(m.clusterDNS), Options: []string{"ndots:5"}}
		if d := m.clusterDomain; d != "" {
			cfg.Searches = []string{pod.Namespace + ".svc." + d, "svc." + d, d}
		}
		cfg.Searches = appendUnique(cfg.Searches, host.Searches...)
	default: // Default: the host's resolver
		if pod.Spec.DNSConfig == nil {
			return nil, nil
		}
		host, err := readResolvConf(m.resolvConf)
		if err != nil {
			return nil, err
		}
		cfg = host
	}
	if d := pod.Spec.DNSConfig; d != nil {
		cfg.Servers = appendUnique(cfg.Servers, d.Nameservers...)
		cfg.Searches = appendUnique(cfg.Searches, d.Searches...)
		cfg.Options = mergeDNSOptions(cfg.Options, d.Options)
	}
	return cfg, nil
}

func appendUnique(l []string, add ...string) []string {
	for _, s := range add {
		if !slices.Contains(l, s) {
			l = append(l, s)
		}
	}
	return l
}

// mergeDNSOptions overrides options of base ("name" or "name:value") by the
// pod's, by name.
func mergeDNSOptions(base []string, pod []v1.PodDNSConfigOption) []string {
	var names []string
	vals := map[string]string{}
	for _, o := range base {
		n, v, _ := strings.Cut(o, ":")
		if _, ok := vals[n]; !ok {
			names = append(names, n)
		}
		vals[n] = v
	}
	for _, o := range pod {
		if _, ok := vals[o.Name]; !ok {
			names = append(names, o.Name)
		}
		vals[o.Name] = ""
		if o.Value != nil {
			vals[o.Name] = *o.Value
		}
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if vals[n] == "" {
			out = append(out, n)
		} else {
			out = append(out, n+":"+vals[n])
		}
	}
	return out
}

// readResolvConf parses the nameservers, search domains and options of a
// resolv.conf. A missing file is an empty config.
func readResolvConf(path string) (*runtimeapi.DNSConfig, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &runtimeapi.DNSConfig{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read resolver config: %w", err)
	}
	cfg := &runtimeapi.DNSConfig{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			cfg.Servers = append(cfg.Servers, f[1])
		case "search":
			cfg.Searches = f[1:] // the last search line wins
		case "domain":
			cfg.Searches = f[1:2]
		case "options":
			cfg.Options = append(cfg.Options, f[1:]...)
		}
	}
	return cfg, nil
}

// cgroupParent is the pod's cgroup parent: the cgroup manager's, else named as
// the kubelet names it.
func (m *Manager) cgroupParent(pod *v1.Pod) string {
	if m.podCgroups != nil {
		return m.podCgroups.CgroupParent(pod)
	}
	return CgroupParent(m.cgroupDriver, m.cgroupRoot, pod)
}
