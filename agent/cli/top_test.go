package cli

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func podStats(ns, name string, cpu, mem uint64, containers ...statsapi.ContainerStats) statsapi.PodStats {
	return statsapi.PodStats{PodRef: statsapi.PodReference{Namespace: ns, Name: name},
		CPU: &statsapi.CPUStats{UsageNanoCores: &cpu}, Memory: &statsapi.MemoryStats{WorkingSetBytes: &mem}, Containers: containers}
}

func ctrStats(name string, cpu, mem uint64) statsapi.ContainerStats {
	return statsapi.ContainerStats{Name: name, CPU: &statsapi.CPUStats{UsageNanoCores: &cpu}, Memory: &statsapi.MemoryStats{WorkingSetBytes: &mem}}
}

// TestTop: CPU in millicores (rounded up) and the memory working set in
// MiB, per pod or container, from the Summary API; pods without figures yet
// left out.
func TestTop(t *testing.T) {
	f := newFakeAgent(t)
	f.setPods(webPod(), crashPod())
	web := podStats("default", "web-node-a", 5_000_001, 12<<20+1<<19, ctrStats("httpd", 5_000_001, 12<<20))
	crash := statsapi.PodStats{PodRef: statsapi.PodReference{Namespace: "default", Name: "crashloop-node-a"},
		Containers: []statsapi.ContainerStats{ctrStats("app", 0, 1<<20)}}
	fresh := statsapi.PodStats{PodRef: statsapi.PodReference{Namespace: "default", Name: "new-node-a"}}
	sys := podStats("kube-system", "dns-node-a", 250_000_000, 30<<20)
	cpu, mem := uint64(1_500_000_000), uint64(1<<30)
	f.summary = &statsapi.Summary{Node: statsapi.NodeStats{NodeName: "node-a",
		CPU: &statsapi.CPUStats{UsageNanoCores: &cpu}, Memory: &statsapi.MemoryStats{WorkingSetBytes: &mem}},
		Pods: []statsapi.PodStats{web, crash, fresh, sys}}
	n := &v1.Node{}
	n.Name = "node-a"
	n.Status.Allocatable = v1.ResourceList{v1.ResourceCPU: mustQuantity("2"), v1.ResourceMemory: mustQuantity("4Gi")}
	f.node = n

	for _, tc := range []struct {
		args        []string
		out, errOut string
		code        int
	}{
		{args: []string{"top", "pods", "-n", "default"}, out: "NAME               CPU(cores)   MEMORY(bytes)\ncrashloop-node-a   0m           1Mi\nweb-node-a         6m           12Mi\n"},
		{args: []string{"top", "pods", "--sort-by", "cpu"}, out: "NAMESPACE     NAME               CPU(cores)   MEMORY(bytes)\n" +
			"kube-system   dns-node-a         250m         30Mi\ndefault       web-node-a         6m           12Mi\ndefault       crashloop-node-a   0m           1Mi\n"},
		{args: []string{"top", "pod", "web-node-a", "--containers"}, out: "POD          NAME    CPU(cores)   MEMORY(bytes)\nweb-node-a   httpd   6m           12Mi\n"},
		{args: []string{"top", "node"}, out: "NAME     CPU(cores)   CPU(%)   MEMORY(bytes)   MEMORY(%)\nnode-a   1500m        75%      1024Mi          25%\n"},
		{args: []string{"top", "pods", "-n", "none"}, code: 1, errOut: "error: metrics not available yet\n"},
		{args: []string{"top", "pods", "--sort-by", "name"}, code: 1, errOut: "error: --sort-by accepts only cpu or memory\nSee 'nodekit-kubelet top --help' for usage.\n"},
	} {
		out, errOut, code := f.run(t, tc.args...)
		if out != tc.out || errOut != tc.errOut || code != tc.code {
			t.Errorf("%v: exit %d, stdout\n%s\nstderr %q; want %d\n%s\n%q", tc.args, code, out, errOut, tc.code, tc.out, tc.errOut)
		}
	}
}
