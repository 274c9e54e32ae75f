package podruntime_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/nodekit-dev/nodekit/agent/podruntime"
)

// A pod with an init container: the first sync creates the sandbox and runs
// the init container only; the app waits until it exited 0.
func Example() {
	dir, err := os.MkdirTemp("", "podruntime-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	rt := critest.NewFakeRuntimeService()
	m, err := podruntime.New(podruntime.Options{
		Runtime: rt, Images: critest.NewFakeImageService(),
		RootDir: filepath.Join(dir, "root"), PodLogsDir: filepath.Join(dir, "logs"),
	})
	if err != nil {
		panic(err)
	}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "1234"},
		Spec: v1.PodSpec{
			RestartPolicy:  v1.RestartPolicyAlways,
			InitContainers: []v1.Container{{Name: "setup", Image: "busybox:1.36"}},
			Containers:     []v1.Container{{Name: "server", Image: "busybox:1.36"}},
		},
	}
	res := m.SyncPod(context.Background(), pod, nil, nil)
	fmt.Println("error:", res.Err)
	var names []string
	for _, c := range rt.Containers {
		names = append(names, c.Metadata.Name)
	}
	slices.Sort(names)
	fmt.Println("containers:", names)
	fmt.Println("sandboxes:", len(rt.Sandboxes))
	// Output:
	// error: <nil>
	// containers: [setup]
	// sandboxes: 1
}

func ExampleCgroupParent() {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{UID: "1234-5678"},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name: "app",
			Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
			},
		}}},
	}
	fmt.Println(podruntime.PodQOS(pod))
	fmt.Println(podruntime.CgroupParent(podruntime.CgroupDriverCgroupfs, "/", pod))
	fmt.Println(podruntime.CgroupParent(podruntime.CgroupDriverSystemd, "", pod))
	// Output:
	// Burstable
	// /kubepods/burstable/pod1234-5678
	// kubepods-burstable-pod1234_5678.slice
}
