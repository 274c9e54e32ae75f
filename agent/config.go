package agent

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	nodeutil "k8s.io/component-helpers/node/util"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// Config is the agent's configuration: a KubeletConfiguration (v1beta1), from a
// file and kubelet-compatible flags, plus the few settings the kubelet takes only
// as flags.
type Config struct {
	Kubelet kubeletconfig.KubeletConfiguration
	// RootDir is the agent's directory for pod data (--root-dir).
	RootDir string
	// NodeName is the node's name (--hostname-override, else the host name).
	NodeName string
	// RuntimeEndpoint is the CRI endpoint (--container-runtime-endpoint); empty
	// means the embedded nodekit shim.
	RuntimeEndpoint string
	// NodeIP is the node's address used for the downward API's hostIP.
	NodeIP string
	// ObjectManifestPath is a directory of ConfigMap and Secret manifests
	// that pods may reference (--object-manifest-path; nodekit's own: the
	// kubelet's static pods cannot reference configMaps or secrets at all).
	ObjectManifestPath string
	// Kubeconfig is the kubeconfig file of the API server to join as a node
	// (--kubeconfig); empty: standalone. NodeLabels (--node-labels) are added
	// to the Node at registration.
	Kubeconfig string
	NodeLabels map[string]string
	// BootstrapKubeconfig (--bootstrap-kubeconfig) may request the node's
	// client certificate when Kubeconfig does not exist or its certificate
	// expired: the pair is kept in CertDir (--cert-dir; default
	// <RootDir>/pki, which also holds a made-up serving certificate) and
	// Kubeconfig written to use it. Kubelet.RotateCertificates renews it.
	// See package clientcert.
	BootstrapKubeconfig string
	CertDir             string
}

// DefaultRootDir is the agent's default --root-dir. It is not the kubelet's
// /var/lib/kubelet, so both can live on one machine.
const DefaultRootDir = "/var/lib/nodekit-kubelet"

// LoadConfig reads a KubeletConfiguration file (YAML or JSON, apiVersion
// kubelet.config.k8s.io/v1beta1) and applies the kubelet's defaults to what it
// leaves unset. An empty path gives the defaults. NodeName is the host name
// (lowercased, as the kubelet's) and RuntimeEndpoint the file's
// containerRuntimeEndpoint; Flags.Load applies --hostname-override and
// --container-runtime-endpoint over them.
func LoadConfig(path string) (*Config, error) {
	name, err := nodeutil.GetHostname("")
	if err != nil {
		return nil, fmt.Errorf("node name: %w", err)
	}
	c := &Config{RootDir: DefaultRootDir, NodeName: name}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("kubelet config: %w", err)
		}
		if err := yaml.UnmarshalStrict(data, &c.Kubelet); err != nil {
			return nil, fmt.Errorf("kubelet config %s: %w", path, err)
		}
		if c.Kubelet.Kind != "" && c.Kubelet.Kind != "KubeletConfiguration" {
			return nil, fmt.Errorf("kubelet config %s: kind %q, want KubeletConfiguration", path, c.Kubelet.Kind)
		}
		if v := c.Kubelet.APIVersion; v != "" && v != kubeletconfig.SchemeGroupVersion.String() {
			return nil, fmt.Errorf("kubelet config %s: apiVersion %q, want %s", path, v, kubeletconfig.SchemeGroupVersion)
		}
	} else {
		// Without a file, the kubelet keeps its command line's historical
		// defaults: no webhook authentication, authorization AlwaysAllow. A
		// file gets the v1beta1 defaults (webhook authentication, authorization
		// Webhook), as kubeadm's nodes run.
		off := false
		c.Kubelet.Authentication.Webhook.Enabled = &off
		c.Kubelet.Authorization.Mode = kubeletconfig.KubeletAuthorizationModeAlwaysAllow
	}
	setDefaults(&c.Kubelet)
	c.RuntimeEndpoint = c.Kubelet.ContainerRuntimeEndpoint
	return c, nil
}

// setDefaults fills unset fields with the kubelet's defaults (those the agent
// uses).
func setDefaults(k *kubeletconfig.KubeletConfiguration) {
	dur := func(d *metav1.Duration, def time.Duration) {
		if d.Duration == 0 {
			d.Duration = def
		}
	}
	i32 := func(p **int32, def int32) {
		if *p == nil {
			v := def
			*p = &v
		}
	}
	dur(&k.SyncFrequency, time.Minute)
	dur(&k.FileCheckFrequency, 20*time.Second)
	dur(&k.RuntimeRequestTimeout, 2*time.Minute)
	dur(&k.NodeStatusUpdateFrequency, 10*time.Second)
	dur(&k.NodeStatusReportFrequency, 5*time.Minute)
	if k.NodeLeaseDurationSeconds == 0 {
		k.NodeLeaseDurationSeconds = 40
	}
	if k.Address == "" {
		k.Address = "0.0.0.0"
	}
	if k.Port == 0 {
		k.Port = 10250
	}
	i32(&k.HealthzPort, 10248)
	if k.HealthzBindAddress == "" {
		k.HealthzBindAddress = "127.0.0.1"
	}
	if k.CgroupDriver == "" {
		k.CgroupDriver = "cgroupfs"
	}
	if k.PodLogsDir == "" {
		k.PodLogsDir = "/var/log/pods"
	}
	if k.MaxPods == 0 {
		k.MaxPods = 110
	}
	if k.Authentication.Anonymous.Enabled == nil {
		f := false
		k.Authentication.Anonymous.Enabled = &f
	}
	if k.Authentication.Webhook.Enabled == nil {
		t := true
		k.Authentication.Webhook.Enabled = &t
	}
	dur(&k.Authentication.Webhook.CacheTTL, 2*time.Minute)
	if k.Authorization.Mode == "" {
		k.Authorization.Mode = kubeletconfig.KubeletAuthorizationModeWebhook
	}
	dur(&k.Authorization.Webhook.CacheAuthorizedTTL, 5*time.Minute)
	dur(&k.Authorization.Webhook.CacheUnauthorizedTTL, 30*time.Second)
	if k.ContainerLogMaxFiles == nil {
		v := int32(5)
		k.ContainerLogMaxFiles = &v
	}
	if k.ContainerLogMaxSize == "" {
		k.ContainerLogMaxSize = "10Mi"
	}
	boolean := func(p **bool, def bool) {
		if *p == nil {
			v := def
			*p = &v
		}
	}
	boolean(&k.CgroupsPerQOS, true)
	boolean(&k.CPUCFSQuota, true)
	if k.CPUCFSQuotaPeriod == nil {
		k.CPUCFSQuotaPeriod = &metav1.Duration{Duration: 100 * time.Millisecond}
	}
	if k.CgroupRoot == "" {
		k.CgroupRoot = "/"
	}
	if k.PodPidsLimit == nil {
		v := int64(-1)
		k.PodPidsLimit = &v
	}
	i32(&k.KubeAPIQPS, 50)
	if k.KubeAPIBurst == 0 {
		k.KubeAPIBurst = 100
	}
	if k.EnforceNodeAllocatable == nil {
		k.EnforceNodeAllocatable = []string{"pods"}
	}
}

// Flags are the kubelet command-line flags the agent understands. Register them
// with RegisterFlags, parse, then Apply them over a loaded Config: a flag given on
// the command line wins over the file, as in the kubelet.
type Flags struct {
	fs                 *flag.FlagSet
	Config             string
	PodManifestPath    string
	ObjectManifestPath string
	Kubeconfig         string
	NodeLabels         string
	RootDir            string
	HostnameOverride   string
	RuntimeEndpoint    string
	NodeIP             string
	Address            string
	Port               int
	ReadOnlyPort       int
	HealthzPort        int
	HealthzBindAddress string
	CgroupDriver       string
	CgroupRoot         string
	AnonymousAuth      bool
	ClientCAFile       string
	TokenWebhook       bool
	TokenWebhookTTL    time.Duration
	AuthorizationMode  string
	AuthorizedTTL      time.Duration
	UnauthorizedTTL    time.Duration
	TLSCertFile        string
	TLSKeyFile         string
	SyncFrequency      time.Duration
	FileCheckFrequency time.Duration
	PodLogsDir         string

	// TLS bootstrap and client certificate rotation.
	BootstrapKubeconfig string
	CertDir             string
	RotateCertificates  bool
}

// RegisterFlags defines the kubelet flags on fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.Config, "config", "", "path of a KubeletConfiguration file (kubelet.config.k8s.io/v1beta1)")
	fs.StringVar(&f.PodManifestPath, "pod-manifest-path", "", "directory of static pod manifests (staticPodPath)")
	fs.StringVar(&f.ObjectManifestPath, "object-manifest-path", "", "directory of ConfigMap and Secret manifests that pods on this node may reference (nodekit only; changes reach running pods at once)")
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "kubeconfig of the API server to join as a node (empty: standalone)")
	fs.StringVar(&f.BootstrapKubeconfig, "bootstrap-kubeconfig", "", "kubeconfig allowed to request the node's client certificate when --kubeconfig does not exist or its certificate expired; --kubeconfig is then written")
	fs.StringVar(&f.CertDir, "cert-dir", "", "directory of the node's certificates (default <root-dir>/pki)")
	fs.BoolVar(&f.RotateCertificates, "rotate-certificates", false, "renew the node's client certificate before it expires (rotateCertificates)")
	fs.StringVar(&f.NodeLabels, "node-labels", "", "labels to add when registering the node, key=value,...")
	fs.StringVar(&f.RootDir, "root-dir", DefaultRootDir, "directory for the agent's files (pods, volumes, certificates, the embedded runtime)")
	fs.StringVar(&f.HostnameOverride, "hostname-override", "", "the node's name instead of the host name")
	fs.StringVar(&f.RuntimeEndpoint, "container-runtime-endpoint", "", "CRI endpoint, e.g. unix:///run/containerd/containerd.sock (default: nodekit's embedded shim)")
	fs.StringVar(&f.NodeIP, "node-ip", "", "the node's IP address (default: the first non-loopback, non-link-local IPv4 address)")
	fs.StringVar(&f.Address, "address", "", "address of the kubelet API (default 0.0.0.0)")
	fs.IntVar(&f.Port, "port", 0, "port of the kubelet API, served over TLS (default 10250)")
	fs.IntVar(&f.ReadOnlyPort, "read-only-port", 0, "port of the read-only API without authentication (0 = off, the default)")
	fs.IntVar(&f.HealthzPort, "healthz-port", 0, "port of /healthz (default 10248; 0 from the file keeps the default)")
	fs.StringVar(&f.HealthzBindAddress, "healthz-bind-address", "", "address of /healthz (default 127.0.0.1)")
	fs.StringVar(&f.CgroupDriver, "cgroup-driver", "", "cgroup driver: cgroupfs (default) or systemd")
	fs.StringVar(&f.CgroupRoot, "cgroup-root", "", "cgroup under which the pods' hierarchy (kubepods) lives (default /; give each agent on one machine its own)")
	fs.BoolVar(&f.AnonymousAuth, "anonymous-auth", false, "allow anonymous requests to the kubelet API")
	fs.StringVar(&f.ClientCAFile, "client-ca-file", "", "CA bundle whose client certificates may use the kubelet API")
	fs.BoolVar(&f.TokenWebhook, "authentication-token-webhook", false, "authenticate bearer tokens to the kubelet API with TokenReviews in the API server (cluster mode)")
	fs.DurationVar(&f.TokenWebhookTTL, "authentication-token-webhook-cache-ttl", 0, "how long TokenReview answers are cached (default 2m)")
	fs.StringVar(&f.AuthorizationMode, "authorization-mode", "", "authorization of the kubelet API: AlwaysAllow (default without --config) or Webhook (SubjectAccessReviews in the API server, cluster mode)")
	fs.DurationVar(&f.AuthorizedTTL, "authorization-webhook-cache-authorized-ttl", 0, "how long allowed SubjectAccessReview answers are cached (default 5m)")
	fs.DurationVar(&f.UnauthorizedTTL, "authorization-webhook-cache-unauthorized-ttl", 0, "how long refused SubjectAccessReview answers are cached (default 30s)")
	fs.StringVar(&f.TLSCertFile, "tls-cert-file", "", "serving certificate of the kubelet API (default: self-signed, generated into the root dir)")
	fs.StringVar(&f.TLSKeyFile, "tls-private-key-file", "", "private key of --tls-cert-file")
	fs.DurationVar(&f.SyncFrequency, "sync-frequency", 0, "how often running pods are synced at most (default 1m)")
	fs.DurationVar(&f.FileCheckFrequency, "file-check-frequency", 0, "how often the manifest directory is rescanned (default 20s)")
	fs.StringVar(&f.PodLogsDir, "pod-logs-dir", "", "directory of container logs (default /var/log/pods)")
	return f
}

// Load reads the file named by --config and applies the flags given on the
// command line over it.
func (f *Flags) Load() (*Config, error) {
	c, err := LoadConfig(f.Config)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	k := &c.Kubelet
	if set["pod-manifest-path"] {
		k.StaticPodPath = f.PodManifestPath
	}
	c.RootDir = f.RootDir
	if set["address"] {
		k.Address = f.Address
	}
	if set["port"] {
		k.Port = int32(f.Port)
	}
	if set["read-only-port"] {
		k.ReadOnlyPort = int32(f.ReadOnlyPort)
	}
	if set["healthz-port"] {
		v := int32(f.HealthzPort)
		k.HealthzPort = &v
	}
	if set["healthz-bind-address"] {
		k.HealthzBindAddress = f.HealthzBindAddress
	}
	if set["cgroup-driver"] {
		k.CgroupDriver = f.CgroupDriver
	}
	if set["cgroup-root"] {
		k.CgroupRoot = f.CgroupRoot
	}
	if set["anonymous-auth"] {
		v := f.AnonymousAuth
		k.Authentication.Anonymous.Enabled = &v
	}
	if set["client-ca-file"] {
		k.Authentication.X509.ClientCAFile = f.ClientCAFile
	}
	if set["authentication-token-webhook"] {
		v := f.TokenWebhook
		k.Authentication.Webhook.Enabled = &v
	}
	if set["authentication-token-webhook-cache-ttl"] {
		k.Authentication.Webhook.CacheTTL.Duration = f.TokenWebhookTTL
	}
	if set["authorization-mode"] {
		k.Authorization.Mode = kubeletconfig.KubeletAuthorizationMode(f.AuthorizationMode)
	}
	if set["authorization-webhook-cache-authorized-ttl"] {
		k.Authorization.Webhook.CacheAuthorizedTTL.Duration = f.AuthorizedTTL
	}
	if set["authorization-webhook-cache-unauthorized-ttl"] {
		k.Authorization.Webhook.CacheUnauthorizedTTL.Duration = f.UnauthorizedTTL
	}
	if set["tls-cert-file"] {
		k.TLSCertFile = f.TLSCertFile
	}
	if set["tls-private-key-file"] {
		k.TLSPrivateKeyFile = f.TLSKeyFile
	}
	if set["sync-frequency"] {
		k.SyncFrequency.Duration = f.SyncFrequency
	}
	if set["file-check-frequency"] {
		k.FileCheckFrequency.Duration = f.FileCheckFrequency
	}
	if set["pod-logs-dir"] {
		k.PodLogsDir = f.PodLogsDir
	}
	if set["container-runtime-endpoint"] {
		c.RuntimeEndpoint = f.RuntimeEndpoint
	}
	c.NodeIP = f.NodeIP
	c.ObjectManifestPath = f.ObjectManifestPath
	c.Kubeconfig = f.Kubeconfig
	c.BootstrapKubeconfig = f.BootstrapKubeconfig
	c.CertDir = f.CertDir
	if set["rotate-certificates"] {
		k.RotateCertificates = f.RotateCertificates
	}
	if f.NodeLabels != "" {
		c.NodeLabels = map[string]string{}
		for _, kv := range strings.Split(f.NodeLabels, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--node-labels: %q is not key=value", kv)
			}
			c.NodeLabels[k] = v
		}
	}
	if set["hostname-override"] {
		// As the kubelet: trimmed and lowercased; empty means the host name.
		if c.NodeName, err = nodeutil.GetHostname(f.HostnameOverride); err != nil {
			return nil, fmt.Errorf("--hostname-override: %w", err)
		}
	}
	if !filepath.IsAbs(c.RootDir) {
		return nil, fmt.Errorf("--root-dir %q: want an absolute path", c.RootDir)
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	if c.BootstrapKubeconfig != "" && c.Kubeconfig == "" {
		return errors.New("--bootstrap-kubeconfig needs --kubeconfig (the file the bootstrap writes)")
	}
	k := &c.Kubelet
	switch k.CgroupDriver {
	case "cgroupfs", "systemd":
	default:
		return fmt.Errorf("cgroupDriver %q: want cgroupfs or systemd", k.CgroupDriver)
	}
	if k.Port < 0 || k.Port > 65535 {
		return fmt.Errorf("port %d: out of range", k.Port)
	}
	if k.ReadOnlyPort < 0 || k.ReadOnlyPort > 65535 {
		return fmt.Errorf("readOnlyPort %d: out of range", k.ReadOnlyPort)
	}
	if *k.HealthzPort < 0 || *k.HealthzPort > 65535 {
		return fmt.Errorf("healthzPort %d: out of range", *k.HealthzPort)
	}
	switch k.Authorization.Mode {
	case kubeletconfig.KubeletAuthorizationModeAlwaysAllow, kubeletconfig.KubeletAuthorizationModeWebhook:
	default:
		return fmt.Errorf("authorization.mode %q: want AlwaysAllow or Webhook", k.Authorization.Mode)
	}
	if k.SyncFrequency.Duration < time.Second {
		return fmt.Errorf("syncFrequency %s: want at least 1s", k.SyncFrequency.Duration)
	}
	for key, v := range c.NodeLabels {
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			return fmt.Errorf("--node-labels: key %q: %s", key, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return fmt.Errorf("--node-labels: %s=%q: %s", key, v, strings.Join(errs, "; "))
		}
	}
	for i, t := range k.RegisterWithTaints {
		if errs := validation.IsQualifiedName(t.Key); len(errs) > 0 {
			return fmt.Errorf("registerWithTaints[%d].key %q: %s", i, t.Key, strings.Join(errs, "; "))
		}
		switch t.Effect {
		case v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute:
		default:
			return fmt.Errorf("registerWithTaints[%d].effect %q: want NoSchedule, PreferNoSchedule or NoExecute", i, t.Effect)
		}
	}
	return nil
}
