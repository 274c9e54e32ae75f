package qos_test

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodekit-dev/nodekit/agent/qos"
)

// The arithmetic alone, without cgroups: a burstable pod's class, its cgroup's
// resources as the kubelet computes them, its container's OOM score adjustment
// on a 16 GiB node, and the node's allocatable.
func Example() {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "1234"},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name: "httpd",
			Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("1Gi")},
				Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("2Gi")},
			},
		}}},
	}
	r := qos.PodResources(pod, qos.PodOptions{CPUCFSQuota: true, PodPidsLimit: 1024})
	fmt.Println("class:", qos.Class(pod))
	fmt.Println("cpu.shares:", *r.CPUShares, "quota:", *r.CPUQuota, "period:", *r.CPUPeriod, "memory:", *r.Memory>>20, "MiB, pids:", *r.PidsLimit)
	fmt.Println("oom_score_adj:", qos.OOMScoreAdj(pod, &pod.Spec.Containers[0], 16<<30))

	capacity := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("16Gi")}
	reserved := v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("1Gi")}
	hardEviction := v1.ResourceList{v1.ResourceMemory: resource.MustParse("100Mi")}
	alloc := qos.Allocatable(capacity, reserved, nil, hardEviction)
	fmt.Println("allocatable cpu:", alloc.Cpu(), "memory:", alloc.Memory())
	// Output:
	// class: Burstable
	// cpu.shares: 256 quota: 50000 period: 100000 memory: 2048 MiB, pids: 1024
	// oom_score_adj: 938
	// allocatable cpu: 3500m memory: 15260Mi
}
