package agent

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/nodekit-dev/nodekit/eviction"
)

// fuzzMachine is the machine the node resources of a fuzzed configuration are
// computed for: 2 CPUs, 8 GiB, 100 GiB of disk, 2 MiB hugepages, 4M pids.
var fuzzMachine = v1.ResourceList{
	v1.ResourceCPU:              resource.MustParse("2"),
	v1.ResourceMemory:           resource.MustParse("8Gi"),
	v1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	"hugepages-2Mi":             resource.MustParse("64Mi"),
	"pid":                       resource.MustParse("4194304"),
}

// FuzzLoadConfig: a KubeletConfiguration file LoadConfig accepts has the right
// kind and apiVersion and every default the agent dereferences filled in;
// written back, it loads to the same configuration (defaulting is
// idempotent); and validating it, reading its eviction settings and computing
// the node's allocatable from it, as the agent's start does, never panics.
// Seeds: below and testdata/fuzz/FuzzLoadConfig (the tests' sample files).
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(testConfigFile))
	f.Add([]byte(`{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "port": 13250}`))
	f.Add([]byte(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
maxPods: 50
podPidsLimit: 1024
kubeReserved: {cpu: 100m, memory: 256Mi, pid: "1000"}
systemReserved: {memory: 128Mi, ephemeral-storage: 1Gi, hugepages-2Mi: 4Mi}
enforceNodeAllocatable: [pods, kube-reserved]
evictionHard: {memory.available: 200Mi, nodefs.available: "5%", pid.available: "10%"}
evictionSoft: {memory.available: 500Mi}
evictionSoftGracePeriod: {memory.available: 30s}
evictionMinimumReclaim: {memory.available: 50Mi}
evictionPressureTransitionPeriod: 1m
evictionMaxPodGracePeriod: 20
mergeDefaultEvictionSettings: true
imageGCHighThresholdPercent: 90
imageGCLowThresholdPercent: 70
registerWithTaints: [{key: example.com/x, value: y, effect: NoSchedule}]
cpuCFSQuotaPeriod: 50ms
`))
	f.Add([]byte("kind: Pod\n"))
	dir := f.TempDir()
	path := filepath.Join(dir, "kubelet.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		c := loadFile(t, path, data)
		if c == nil {
			return
		}
		k := &c.Kubelet
		if k.Kind != "" && k.Kind != "KubeletConfiguration" || k.APIVersion != "" && k.APIVersion != kubeletconfig.SchemeGroupVersion.String() {
			t.Fatalf("accepted kind %q apiVersion %q", k.Kind, k.APIVersion)
		}
		if k.HealthzPort == nil || k.ContainerLogMaxFiles == nil || k.CgroupsPerQOS == nil || k.CPUCFSQuota == nil ||
			k.CPUCFSQuotaPeriod == nil || k.PodPidsLimit == nil || k.KubeAPIQPS == nil ||
			k.Authentication.Anonymous.Enabled == nil || k.Authentication.Webhook.Enabled == nil {
			t.Fatalf("a default is missing: %+v", k)
		}
		if k.SyncFrequency.Duration == 0 || k.FileCheckFrequency.Duration == 0 || k.CgroupDriver == "" || k.MaxPods == 0 ||
			k.EnforceNodeAllocatable == nil || k.Authorization.Mode == "" {
			t.Fatalf("a default is missing: %+v", k)
		}

		// Written back, the configuration loads to itself.
		out, err := yaml.Marshal(k)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		c2 := loadFile(t, path, out)
		if c2 == nil {
			t.Fatalf("the loaded configuration, written back, does not load:\n%s", out)
		}
		if a, b := jsonOf(t, c), jsonOf(t, c2); !bytes.Equal(a, b) {
			t.Fatalf("loading the written-back configuration changed it:\n%s\n%s", a, b)
		}

		// What the agent's start does with it next.
		c.NodeName = "node1"
		if err := c.validate(); err != nil {
			return
		}
		ev, err := eviction.ParseConfig(k)
		if err != nil {
			return
		}
		nr, err := computeNodeResources(k, fuzzMachine, hardEvictionReservation(ev, fuzzMachine))
		if err != nil {
			return
		}
		if nr.capacity == nil || nr.allocatable == nil {
			t.Fatalf("node resources without capacity or allocatable: %+v", nr)
		}
		for name, q := range nr.allocatable {
			if q.Sign() < 0 {
				t.Fatalf("allocatable %s is negative: %s", name, q.String())
			}
			if c, ok := nr.capacity[name]; ok && q.Cmp(c) > 0 {
				t.Fatalf("allocatable %s %s exceeds capacity %s", name, q.String(), c.String())
			}
		}
	})
}

// loadFile writes data to path and loads it; nil when LoadConfig refuses it.
func loadFile(t *testing.T, path string, data []byte) *Config {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		if c != nil {
			t.Fatalf("LoadConfig failed (%v) but returned a configuration", err)
		}
		return nil
	}
	return c
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
