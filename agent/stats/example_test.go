package stats_test

import (
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodekit-dev/nodekit/agent/stats"
)

// The agent passes what the CRI list calls return; FromCRI shapes it as the
// Summary API's pod stats.
func ExampleFromCRI() {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	in := stats.CRIStats{
		Sandboxes: []*runtimeapi.PodSandbox{{
			Id: "sb1", State: runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: created,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "1234"},
		}},
		Containers: []*runtimeapi.Container{{
			Id: "c1", PodSandboxId: "sb1", State: runtimeapi.ContainerState_CONTAINER_RUNNING, CreatedAt: created,
			Metadata: &runtimeapi.ContainerMetadata{Name: "nginx"},
		}},
		// a runtime without ListPodSandboxStats: container stats only
		ContainerStats: []*runtimeapi.ContainerStats{{
			Attributes: &runtimeapi.ContainerAttributes{Id: "c1", Metadata: &runtimeapi.ContainerMetadata{Name: "nginx"}},
			Cpu:        &runtimeapi.CpuUsage{UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: 2_500_000_000}},
			Memory:     &runtimeapi.MemoryUsage{WorkingSetBytes: &runtimeapi.UInt64Value{Value: 8 << 20}},
		}},
	}
	for _, pod := range stats.FromCRI(in, stats.PodOptions{}) {
		fmt.Printf("%s/%s: cpu %.1fs, working set %d MiB\n", pod.PodRef.Namespace, pod.PodRef.Name,
			float64(*pod.CPU.UsageCoreNanoSeconds)/1e9, *pod.Memory.WorkingSetBytes>>20)
		for _, c := range pod.Containers {
			fmt.Printf("  %s started %s\n", c.Name, c.StartTime.UTC().Format(time.RFC3339))
		}
	}
	// Output:
	// default/web: cpu 2.5s, working set 8 MiB
	//   nginx started 2024-01-01T00:00:00Z
}

// Node reads the root cgroup, the machine and the filesystem through cAdvisor;
// the second Stats call at least a second later reports CPU use in nanocores.
func ExampleNode() {
	node := stats.NewNode(stats.NodeOptions{NodeName: "node-a", FsPath: "/var/lib/nodekit-kubelet",
		SystemContainers: map[string]string{statsapi.SystemContainerPods: "/kubepods"}})
	mi, err := node.Machine()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d cores, %d bytes of memory, %d bytes of ephemeral storage\n", mi.NumCores, mi.MemoryCapacity, mi.FsCapacity)
	ns, err := node.Stats()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("memory.available:", *ns.Memory.AvailableBytes) // capacity − working set
}
