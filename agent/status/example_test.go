package status_test

import (
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/agent/status"
	"github.com/nodekit-dev/nodekit/pleg"
)

// A static pod whose container "web" crashed once and runs again.
func examplePod() (*v1.Pod, *pleg.PodStatus) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-node1", Namespace: "default", UID: "3b8f",
			Annotations: map[string]string{"kubernetes.io/config.source": "file"}},
		Spec: v1.PodSpec{
			RestartPolicy: v1.RestartPolicyAlways,
			Containers:    []v1.Container{{Name: "web", Image: "nginx:1.27"}},
		},
	}
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	sec := func(s int) int64 { return start.Add(time.Duration(s) * time.Second).UnixNano() }
	rs := &pleg.PodStatus{
		ID: pod.UID, Name: pod.Name, Namespace: pod.Namespace,
		IPs: []string{"10.88.0.7"},
		SandboxStatuses: []*runtimeapi.PodSandboxStatus{{
			Id: "sb-1", State: runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: sec(0),
			Network: &runtimeapi.PodSandboxNetworkStatus{Ip: "10.88.0.7"},
			Linux:   &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{}}},
		}},
		ContainerStatuses: []*runtimeapi.ContainerStatus{
			{Id: "web-2", Metadata: &runtimeapi.ContainerMetadata{Name: "web", Attempt: 1},
				State: runtimeapi.ContainerState_CONTAINER_RUNNING, CreatedAt: sec(20), StartedAt: sec(21),
				ImageRef: "sha256:4f3a", Annotations: map[string]string{status.RestartCountAnnotation: "1"}},
			{Id: "web-1", Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
				State: runtimeapi.ContainerState_CONTAINER_EXITED, CreatedAt: sec(1), StartedAt: sec(2), FinishedAt: sec(9),
				ExitCode: 1, Reason: "Error", ImageRef: "sha256:4f3a"},
		},
	}
	return pod, rs
}

func ExampleGenerate() {
	pod, rs := examplePod()
	s := status.Generate(pod, rs, v1.PodStatus{}, status.GenerateOptions{RuntimeName: "nodekit"})

	fmt.Println(s.Phase, s.PodIP, s.QOSClass)
	for _, c := range s.Conditions {
		fmt.Println(c.Type, c.Status)
	}
	c := s.ContainerStatuses[0]
	fmt.Println(c.Name, c.ContainerID, c.ImageID, "restarts:", c.RestartCount, "ready:", c.Ready)
	fmt.Println("last exit:", c.LastTerminationState.Terminated.ExitCode, c.LastTerminationState.Terminated.Reason)
	// Output:
	// Running 10.88.0.7 BestEffort
	// PodReadyToStartContainers True
	// Initialized True
	// Ready True
	// ContainersReady True
	// PodScheduled True
	// web nodekit://web-2 sha256:4f3a restarts: 1 ready: true
	// last exit: 1 Error
}

func ExampleNewManager() {
	pod, rs := examplePod()
	sink := &status.MemorySink{}
	m := status.NewManager(sink, nil, nil)
	m.Start()
	defer m.Stop()

	m.SetPodStatus(pod, status.Generate(pod, rs, v1.PodStatus{}, status.GenerateOptions{RuntimeName: "nodekit"}))
	// The same status again: no new version.
	m.SetPodStatus(pod, status.Generate(pod, rs, v1.PodStatus{}, status.GenerateOptions{RuntimeName: "nodekit"}))
	// A readiness probe failed: version 2.
	m.SetContainerReadiness(pod.UID, "nodekit://web-2", false)

	// The sink receives the newest version asynchronously.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if e, ok := sink.Get(pod.UID); ok && e.Version == m.Version(pod.UID) {
			break
		}
	}
	e, _ := sink.Get(pod.UID)
	for _, c := range e.Status.Conditions {
		if c.Type == v1.PodReady {
			fmt.Println("version", e.Version, c.Type, c.Status, c.Message)
		}
	}
	// Output:
	// version 2 Ready False containers with unready status: [web]
}
