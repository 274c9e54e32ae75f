package podruntime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestContainerEnv(t *testing.T) {
	pod := newPod("web", "app")
	pod.Labels = map[string]string{"tier": "front"}
	pod.Annotations = map[string]string{"note": "hi"}
	pod.Spec.ServiceAccountName = "sa"
	c := &pod.Spec.Containers[0]
	c.Resources = v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("128Mi")},
	}
	field := func(p string) *v1.EnvVarSource {
		return &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: p}}
	}
	res := func(r, div string) *v1.EnvVarSource {
		s := &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: r}}
		if div != "" {
			s.ResourceFieldRef.Divisor = resource.MustParse(div)
		}
		return s
	}
	optional := true
	c.Env = []v1.EnvVar{
		{Name: "NAME", ValueFrom: field("metadata.name")},
		{Name: "NS", ValueFrom: field("metadata.namespace")},
		{Name: "UID", ValueFrom: field("metadata.uid")},
		{Name: "TIER", ValueFrom: field("metadata.labels['tier']")},
		{Name: "NOTE", ValueFrom: field("metadata.annotations['note']")},
		{Name: "NODE", ValueFrom: field("spec.nodeName")},
		{Name: "SA", ValueFrom: field("spec.serviceAccountName")},
		{Name: "HOST_IP", ValueFrom: field("status.hostIP")},
		{Name: "HOST_IPS", ValueFrom: field("status.hostIPs")},
		{Name: "POD_IP", ValueFrom: field("status.podIP")},
		{Name: "POD_IPS", ValueFrom: field("status.podIPs")},
		{Name: "CPU_REQ_M", ValueFrom: res("requests.cpu", "1m")},
		{Name: "CPU_REQ", ValueFrom: res("requests.cpu", "")},
		{Name: "CPU_LIM", ValueFrom: res("limits.cpu", "")},
		{Name: "MEM_LIM_MI", ValueFrom: res("limits.memory", "1Mi")},
		{Name: "MEM_REQ", ValueFrom: res("requests.memory", "")},
		{Name: "GREETING", Value: "hello $(NAME) in $(NS), $(LATER) costs $$5"},
		{Name: "LATER", Value: "later"},
		{Name: "MAYBE", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
			LocalObjectReference: v1.LocalObjectReference{Name: "cm"}, Key: "k", Optional: &optional}}},
		{Name: "NAME", Value: "override"},
	}
	c.Command = []string{"/bin/echo", "$(GREETING)"}
	c.Args = []string{"$(LATER)", "$(NOPE)"}

	ec := envContext{podIP: "10.88.0.5", podIPs: []string{"10.88.0.5", "fd00::5"}, hostIPs: []string{"10.1.1.1", "fd00::1"},
		nodeName: "node1", allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("3500m")}}
	got, err := containerEnv(context.Background(), pod, c, ec)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	var order []string
	for _, e := range got {
		m[e.name] = e.value
		order = append(order, e.name)
	}
	want := map[string]string{
		"NAME": "override", "NS": "default", "UID": "uid-web", "TIER": "front", "NOTE": "hi", "NODE": "node1", "SA": "sa",
		"HOST_IP": "10.1.1.1", "HOST_IPS": "10.1.1.1,fd00::1", "POD_IP": "10.88.0.5", "POD_IPS": "10.88.0.5,fd00::5",
		"CPU_REQ_M": "250", "CPU_REQ": "1", "CPU_LIM": "4", "MEM_LIM_MI": "128", "MEM_REQ": "67108864",
		"GREETING": "hello web in default, $(LATER) costs $5", "LATER": "later",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if _, ok := m["MAYBE"]; ok {
		t.Error("an optional configMapKeyRef without an API server must be skipped")
	}
	if order[0] != "NAME" || len(order) != len(want) {
		t.Errorf("order %v: a redefined variable keeps its place", order)
	}
	if cmd := expandAll(c.Command, got); !slices.Equal(cmd, []string{"/bin/echo", "hello web in default, $(LATER) costs $5"}) {
		t.Errorf("command %q", cmd)
	}
	if args := expandAll(c.Args, got); !slices.Equal(args, []string{"later", "$(NOPE)"}) {
		t.Errorf("args %q", args)
	}
}

func TestContainerEnvErrors(t *testing.T) {
	tests := map[string]v1.Container{
		"secretKeyRef": {Env: []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{
			LocalObjectReference: v1.LocalObjectReference{Name: "s"}, Key: "k"}}}}},
		"configMapKeyRef": {Env: []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
			LocalObjectReference: v1.LocalObjectReference{Name: "c"}, Key: "k"}}}}},
		"envFrom":   {EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "c"}}}}},
		"fieldPath": {Env: []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.hostname"}}}}},
		"resource":  {Env: []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.gpu"}}}}},
	}
	for name, c := range tests {
		c.Name = "app"
		pod := newPod("p")
		pod.Spec.Containers = []v1.Container{c}
		if _, err := containerEnv(context.Background(), pod, &pod.Spec.Containers[0], envContext{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}

	// Through SyncPod, the failure is a CreateContainerConfigError.
	e := newEnv(t)
	pod := newPod("p", "app")
	pod.Spec.Containers[0].Env = tests["secretKeyRef"].Env
	res := e.sync(pod)
	if !errors.Is(res.Err, ErrCreateContainerConfig) {
		t.Fatalf("err %v, want CreateContainerConfigError", res.Err)
	}
	if r, msg := e.m.WaitingReason(pod.UID, "app"); r != "CreateContainerConfigError" || !strings.Contains(msg, "secret") {
		t.Errorf("waiting %q %q", r, msg)
	}
}

func podWithResources(uid string, rr ...v1.ResourceRequirements) *v1.Pod {
	p := newPod("p")
	p.UID = "1234-abcd"
	if uid != "" {
		p.UID = "1234-abcd"
	}
	for i, r := range rr {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "c" + string(rune('0'+i)), Image: "busybox", Resources: r})
	}
	return p
}

func rl(cpu, mem string) v1.ResourceList {
	l := v1.ResourceList{}
	if cpu != "" {
		l[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		l[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return l
}

func TestQOSAndCgroupParent(t *testing.T) {
	guaranteed := podWithResources("x", v1.ResourceRequirements{Requests: rl("1", "1Gi"), Limits: rl("1", "1Gi")})
	burstable := podWithResources("x", v1.ResourceRequirements{Requests: rl("100m", "")})
	besteffort := podWithResources("x", v1.ResourceRequirements{})
	mixed := podWithResources("x", v1.ResourceRequirements{Requests: rl("1", "1Gi"), Limits: rl("1", "1Gi")}, v1.ResourceRequirements{})
	unequal := podWithResources("x", v1.ResourceRequirements{Requests: rl("500m", "1Gi"), Limits: rl("1", "1Gi")})
	tests := []struct {
		pod            *v1.Pod
		qos            v1.PodQOSClass
		fs, fsRoot, sd string
	}{
		{guaranteed, v1.PodQOSGuaranteed, "/kubepods/pod1234-abcd", "/nk/kubepods/pod1234-abcd", "kubepods-pod1234_abcd.slice"},
		{burstable, v1.PodQOSBurstable, "/kubepods/burstable/pod1234-abcd", "/nk/kubepods/burstable/pod1234-abcd", "kubepods-burstable-pod1234_abcd.slice"},
		{besteffort, v1.PodQOSBestEffort, "/kubepods/besteffort/pod1234-abcd", "/nk/kubepods/besteffort/pod1234-abcd", "kubepods-besteffort-pod1234_abcd.slice"},
		{mixed, v1.PodQOSBurstable, "/kubepods/burstable/pod1234-abcd", "/nk/kubepods/burstable/pod1234-abcd", "kubepods-burstable-pod1234_abcd.slice"},
		{unequal, v1.PodQOSBurstable, "/kubepods/burstable/pod1234-abcd", "/nk/kubepods/burstable/pod1234-abcd", "kubepods-burstable-pod1234_abcd.slice"},
	}
	for _, tt := range tests {
		if q := PodQOS(tt.pod); q != tt.qos {
			t.Errorf("%s: qos %s", tt.qos, q)
		}
		if got := CgroupParent(CgroupDriverCgroupfs, "/", tt.pod); got != tt.fs {
			t.Errorf("%s: cgroupfs parent %q, want %q", tt.qos, got, tt.fs)
		}
		if got := CgroupParent(CgroupDriverCgroupfs, "/nk", tt.pod); got != tt.fsRoot {
			t.Errorf("%s: cgroupfs parent under /nk %q, want %q", tt.qos, got, tt.fsRoot)
		}
		if got := CgroupParent(CgroupDriverSystemd, "", tt.pod); got != tt.sd {
			t.Errorf("%s: systemd parent %q, want %q", tt.qos, got, tt.sd)
		}
	}
}

func TestContainerResources(t *testing.T) {
	e := newEnv(t) // 4 GiB of memory
	tests := []struct {
		name          string
		pod           *v1.Pod
		shares, quota int64
		mem, oom      int64
	}{
		{"besteffort", podWithResources("", v1.ResourceRequirements{}), 2, 0, 0, 1000},
		{"guaranteed", podWithResources("", v1.ResourceRequirements{Requests: rl("500m", "256Mi"), Limits: rl("500m", "256Mi")}), 512, 50000, 256 << 20, -997},
		{"burstable 1 GiB request of 4", podWithResources("", v1.ResourceRequirements{Requests: rl("2", "1Gi")}), 2048, 0, 0, 750},
		{"burstable tiny request", podWithResources("", v1.ResourceRequirements{Requests: rl("1m", "1")}), 2, 0, 0, 999},
		{"burstable huge request", podWithResources("", v1.ResourceRequirements{Requests: rl("", "4Gi")}), 2, 0, 0, 3},
		{"limit only cpu: request defaults to limit", podWithResources("", v1.ResourceRequirements{Limits: rl("250m", "")}), 256, 25000, 0, 1000 - 1},
	}
	for _, tt := range tests {
		r := e.m.containerResources(tt.pod, &tt.pod.Spec.Containers[0])
		if r.CpuShares != tt.shares || r.CpuQuota != tt.quota || r.CpuPeriod != 100000 || r.MemoryLimitInBytes != tt.mem || r.OomScoreAdj != tt.oom {
			t.Errorf("%s: shares %d quota %d/%d mem %d oom %d; want %d %d/100000 %d %d", tt.name,
				r.CpuShares, r.CpuQuota, r.CpuPeriod, r.MemoryLimitInBytes, r.OomScoreAdj, tt.shares, tt.quota, tt.mem, tt.oom)
		}
	}
}

func TestSandboxConfig(t *testing.T) {
	e := newEnv(t)
	share := true
	ndots := "3"
	uid := int64(1000)
	pod := newPod(strings.Repeat("a", 62)+"-bbb", "app")
	pod.Spec.ShareProcessNamespace = &share
	pod.Spec.SecurityContext = &v1.PodSecurityContext{
		RunAsUser: &uid, SupplementalGroups: []int64{5},
		Sysctls: []v1.Sysctl{{Name: "net/ipv4/conf/eth0.100/rp_filter", Value: "1"}, {Name: "kernel.shm_rmid_forced", Value: "1"}},
	}
	pod.Spec.DNSConfig = &v1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"svc.local"},
		Options: []v1.PodDNSConfigOption{{Name: "ndots", Value: &ndots}, {Name: "edns0"}}}
	pod.Spec.Containers[0].Ports = []v1.ContainerPort{
		{ContainerPort: 80, HostPort: 8080, Protocol: v1.ProtocolTCP},
		{ContainerPort: 53, HostPort: 5353, Protocol: v1.ProtocolUDP, HostIP: "127.0.0.1"},
		{ContainerPort: 9090},
	}
	cfg, err := e.m.SandboxConfig(pod, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Hostname) != 62 || strings.HasSuffix(cfg.Hostname, "-") {
		t.Errorf("hostname %q: want the name cut to 63 characters without a trailing dash", cfg.Hostname)
	}
	if cfg.Metadata.Attempt != 3 {
		t.Errorf("attempt %d", cfg.Metadata.Attempt)
	}
	ns := cfg.Linux.SecurityContext.NamespaceOptions
	if ns.Network != runtimeapi.NamespaceMode_POD || ns.Pid != runtimeapi.NamespaceMode_POD || ns.Ipc != runtimeapi.NamespaceMode_POD {
		t.Errorf("namespaces %v", ns)
	}
	if cfg.Linux.SecurityContext.RunAsUser.GetValue() != 1000 || !slices.Equal(cfg.Linux.SecurityContext.SupplementalGroups, []int64{5}) {
		t.Errorf("security %v", cfg.Linux.SecurityContext)
	}
	if cfg.Linux.Sysctls["net.ipv4.conf.eth0/100.rp_filter"] != "1" || cfg.Linux.Sysctls["kernel.shm_rmid_forced"] != "1" {
		t.Errorf("sysctls %v", cfg.Linux.Sysctls)
	}
	if cfg.Linux.CgroupParent != testCgroupRoot+"/kubepods/besteffort/poduid-"+pod.Name {
		t.Errorf("cgroup parent %q", cfg.Linux.CgroupParent)
	}
	if len(cfg.PortMappings) != 2 || cfg.PortMappings[1].Protocol != runtimeapi.Protocol_UDP || cfg.PortMappings[1].HostIp != "127.0.0.1" {
		t.Errorf("port mappings %v: want the two host ports", cfg.PortMappings)
	}
	dns := cfg.DnsConfig
	if dns == nil || !slices.Equal(dns.Servers, []string{"10.0.0.2", "1.1.1.1"}) || !slices.Equal(dns.Searches, []string{"example.com", "svc.local"}) ||
		!slices.Equal(dns.Options, []string{"ndots:3", "timeout:1", "edns0"}) {
		t.Errorf("dns %v: want the host's resolver merged with the pod's", dns)
	}

	// Host namespaces; no pod dnsConfig: the runtime's resolver.
	host := newPod("h", "app")
	host.Spec.HostNetwork, host.Spec.HostPID, host.Spec.HostIPC = true, true, true
	cfg, err = e.m.SandboxConfig(host, 0)
	if err != nil {
		t.Fatal(err)
	}
	ns = cfg.Linux.SecurityContext.NamespaceOptions
	if ns.Network != runtimeapi.NamespaceMode_NODE || ns.Pid != runtimeapi.NamespaceMode_NODE || ns.Ipc != runtimeapi.NamespaceMode_NODE {
		t.Errorf("host namespaces %v", ns)
	}
	if cfg.Hostname != "" || cfg.DnsConfig != nil {
		t.Errorf("host-network pod: hostname %q dns %v, want both left to the runtime", cfg.Hostname, cfg.DnsConfig)
	}
	if newPod("x").Spec.ShareProcessNamespace == nil && pidMode(newPod("x")) != runtimeapi.NamespaceMode_CONTAINER {
		t.Error("default pid mode must be CONTAINER")
	}

	// dnsPolicy None: only the pod's config.
	none := newPod("n", "app")
	none.Spec.DNSPolicy = v1.DNSNone
	none.Spec.DNSConfig = &v1.PodDNSConfig{Nameservers: []string{"9.9.9.9"}}
	cfg, _ = e.m.SandboxConfig(none, 0)
	if cfg.DnsConfig == nil || !slices.Equal(cfg.DnsConfig.Servers, []string{"9.9.9.9"}) || len(cfg.DnsConfig.Searches) != 0 {
		t.Errorf("dnsPolicy None: %v", cfg.DnsConfig)
	}

	// With a cluster DNS, ClusterFirst gets it.
	ce := newEnv(t, func(o *Options) { o.ClusterDNS, o.ClusterDomain = []string{"10.96.0.10"}, "cluster.local" })
	cfg, _ = ce.m.SandboxConfig(newPod("c", "app"), 0)
	if cfg.DnsConfig == nil || !slices.Equal(cfg.DnsConfig.Servers, []string{"10.96.0.10"}) ||
		!slices.Equal(cfg.DnsConfig.Searches, []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.com"}) ||
		!slices.Equal(cfg.DnsConfig.Options, []string{"ndots:5"}) {
		t.Errorf("ClusterFirst: %v", cfg.DnsConfig)
	}

	// User namespaces are refused, not silently dropped.
	f := false
	userns := newPod("u", "app")
	userns.Spec.HostUsers = &f
	if _, err := e.m.SandboxConfig(userns, 0); err == nil {
		t.Error("hostUsers: false accepted")
	}
}

func TestContainerConfig(t *testing.T) {
	e := newEnv(t)
	hostDir := t.TempDir()
	pod := newPod("p", "app")
	yes, no := true, false
	uid := int64(0)
	pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: ptr(int64(2000)), RunAsUser: ptr(int64(1000))}
	pod.Spec.Volumes = []v1.Volume{
		{Name: "cache", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: hostDir}}},
	}
	c := &pod.Spec.Containers[0]
	c.TTY, c.Stdin = true, true
	c.WorkingDir = "/work"
	c.Env = []v1.EnvVar{{Name: "SUB", Value: "logs"}}
	c.VolumeMounts = []v1.VolumeMount{
		{Name: "cache", MountPath: "/cache"},
		{Name: "host", MountPath: "/host", ReadOnly: true},
	}
	c.SecurityContext = &v1.SecurityContext{
		RunAsUser: &uid, Privileged: &no, ReadOnlyRootFilesystem: &yes, AllowPrivilegeEscalation: &no,
		Capabilities:   &v1.Capabilities{Add: []v1.Capability{"NET_ADMIN"}, Drop: []v1.Capability{"ALL"}},
		SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr("profiles/audit.json")},
	}
	c.Lifecycle = &v1.Lifecycle{StopSignal: ptr(v1.SIGUSR1)}

	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	cfg := e.rt.configs[e.rt.containerIDs("app")[0]]
	sc := cfg.Linux.SecurityContext
	if sc.RunAsUser.GetValue() != 0 || !sc.ReadonlyRootfs || !sc.NoNewPrivs || sc.Privileged ||
		!slices.Equal(sc.Capabilities.AddCapabilities, []string{"NET_ADMIN"}) || !slices.Equal(sc.Capabilities.DropCapabilities, []string{"ALL"}) {
		t.Errorf("security context %v", sc)
	}
	if !slices.Equal(sc.SupplementalGroups, []int64{2000}) {
		t.Errorf("supplemental groups %v, want the fsGroup", sc.SupplementalGroups)
	}
	if sc.Seccomp.ProfileType != runtimeapi.SecurityProfile_Localhost || sc.Seccomp.LocalhostRef != filepath.Join(e.root, "seccomp", "profiles/audit.json") {
		t.Errorf("seccomp %v", sc.Seccomp)
	}
	if !slices.Contains(sc.MaskedPaths, "/proc/kcore") || !slices.Contains(sc.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked %v readonly %v: want the kubelet's defaults", sc.MaskedPaths, sc.ReadonlyPaths)
	}
	if !cfg.Tty || !cfg.Stdin || cfg.WorkingDir != "/work" || cfg.StopSignal != runtimeapi.Signal_SIGNAL_SIGUSR1 {
		t.Errorf("tty %t stdin %t workdir %q stop signal %v", cfg.Tty, cfg.Stdin, cfg.WorkingDir, cfg.StopSignal)
	}
	mounts := map[string]*runtimeapi.Mount{}
	for _, m := range cfg.Mounts {
		mounts[m.ContainerPath] = m
	}
	emptyDir := filepath.Join(e.root, "pods", "uid-p", "volumes", "kubernetes.io~empty-dir", "cache")
	if m := mounts["/cache"]; m == nil || m.HostPath != emptyDir || m.Readonly {
		t.Errorf("/cache mount %v, want %s", m, emptyDir)
	}
	if fi, err := os.Stat(emptyDir); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir %v: %v, want a 0777 directory", fi, err)
	}
	if m := mounts["/host"]; m == nil || m.HostPath != hostDir || !m.Readonly {
		t.Errorf("/host mount %v, want %s read-only", m, hostDir)
	}
	tm := mounts["/dev/termination-log"]
	if tm == nil || !strings.HasPrefix(tm.HostPath, filepath.Join(e.root, "pods", "uid-p", "containers", "app")+"/") {
		t.Fatalf("termination message mount %v", tm)
	}
	if fi, err := os.Stat(tm.HostPath); err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("termination message file: %v %v", fi, err)
	}

	// The default seccomp profile and runAsNonRoot checks.
	d := newEnv(t, func(o *Options) { o.SeccompDefault = true })
	p2 := newPod("q", "app")
	if sc, err := d.m.containerSecurity(p2, &p2.Spec.Containers[0], nil, ""); err != nil || sc.Seccomp.ProfileType != runtimeapi.SecurityProfile_RuntimeDefault {
		t.Errorf("SeccompDefault: %v %v", sc.GetSeccomp(), err)
	}
	if sc, _ := e.m.containerSecurity(p2, &p2.Spec.Containers[0], nil, ""); sc.Seccomp.ProfileType != runtimeapi.SecurityProfile_Unconfined {
		t.Errorf("no profile without SeccompDefault: %v", sc.Seccomp)
	}
	p2.Spec.SecurityContext = &v1.PodSecurityContext{RunAsNonRoot: &yes}
	zero, thousand := int64(0), int64(1000)
	for _, tc := range []struct {
		uid   *int64
		user  string
		ok    bool
		runAs *int64
	}{
		{&zero, "", false, nil}, {&thousand, "", true, nil}, {nil, "nobody", false, nil}, {&zero, "", true, &thousand}, {nil, "", false, &zero},
	} {
		p2.Spec.Containers[0].SecurityContext = &v1.SecurityContext{RunAsUser: tc.runAs}
		_, err := e.m.containerSecurity(p2, &p2.Spec.Containers[0], tc.uid, tc.user)
		if (err == nil) != tc.ok {
			t.Errorf("runAsNonRoot image uid %v user %q runAsUser %v: err %v, want ok=%t", tc.uid, tc.user, tc.runAs, err, tc.ok)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestVolumeErrors(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	pod.Spec.Volumes = []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}}}
	res := e.sync(pod)
	if !errors.Is(res.Err, ErrMountVolumes) || len(e.rt.sandbox) != 0 {
		t.Errorf("configMap volume: err %v, sandboxes %d; want FailedMount before any sandbox", res.Err, len(e.rt.sandbox))
	}

	pod = newPod("s", "app")
	pod.Spec.Volumes = []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "d", MountPath: "/d", SubPath: "../../etc"}}
	if res := e.sync(pod); !errors.Is(res.Err, ErrCreateContainerConfig) {
		t.Errorf("subPath escaping: %v, want CreateContainerConfigError", res.Err)
	}
}

func TestDefaultTagAndAuth(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                      "busybox:latest",
		"busybox:1.36":                 "busybox:1.36",
		"localhost:5000/app":           "localhost:5000/app:latest",
		"localhost:5000/app:v2":        "localhost:5000/app:v2",
		"ghcr.io/x/y@sha256:" + sha256: "ghcr.io/x/y@sha256:" + sha256,
	} {
		if got, err := defaultTag(in); err != nil || got != want {
			t.Errorf("defaultTag(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	secret := v1.Secret{Data: map[string][]byte{
		v1.DockerConfigJsonKey: []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},"ghcr.io":{"username":"g","password":"p"}}}`),
	}}
	auths, err := registryAuths("busybox:latest", []v1.Secret{secret})
	if err != nil || len(auths) != 1 || auths[0].Username != "user" || auths[0].Password != "pass" {
		t.Errorf("docker hub auths %v %v", auths, err)
	}
	auths, _ = registryAuths("ghcr.io/x/y:1", []v1.Secret{secret})
	if len(auths) != 1 || auths[0].Username != "g" {
		t.Errorf("ghcr auths %v", auths)
	}
	auths, _ = registryAuths("quay.io/x/y:1", []v1.Secret{secret})
	if len(auths) != 0 {
		t.Errorf("quay auths %v, want none", auths)
	}
}

const sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
