package pleg_test

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/nodekit-dev/nodekit/pleg"
)

// fakeRuntime returns the CRI fake runtime holding one pod, as the kubelet labels
// it: a ready sandbox and a running container.
func fakeRuntime() *critest.FakeRuntimeService {
	labels := map[string]string{
		"io.kubernetes.pod.uid":       "uid-1",
		"io.kubernetes.pod.name":      "web",
		"io.kubernetes.pod.namespace": "default",
	}
	rt := critest.NewFakeRuntimeService()
	rt.SetFakeSandboxes([]*critest.FakePodSandbox{{PodSandboxStatus: runtimeapi.PodSandboxStatus{
		Id:       "sandbox-1",
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "uid-1"},
		State:    runtimeapi.PodSandboxState_SANDBOX_READY,
		Network:  &runtimeapi.PodSandboxNetworkStatus{Ip: "10.88.0.5"},
		Labels:   labels,
	}}})
	rt.SetFakeContainers([]*critest.FakeContainer{{SandboxID: "sandbox-1", ContainerStatus: runtimeapi.ContainerStatus{
		Id:       "web-1",
		Metadata: &runtimeapi.ContainerMetadata{Name: "nginx"},
		State:    runtimeapi.ContainerState_CONTAINER_RUNNING,
		Labels:   labels,
	}}})
	return rt
}

// A generic PLEG reports what is running and keeps its statuses in the cache.
func ExampleNewGeneric() {
	cache := pleg.NewCache()
	p := pleg.NewGeneric(pleg.Options{Runtime: fakeRuntime(), Cache: cache})
	p.Start()
	defer p.Stop()
	for range 2 {
		e := <-p.Watch()
		fmt.Println(e.ID, e.Type, e.Data)
	}
	st, _ := cache.Get("uid-1")
	fmt.Println(st.Namespace, st.Name, st.IPs, st.ContainerStatuses[0].Metadata.Name, st.ContainerStatuses[0].State)
	// Output:
	// uid-1 PodSync sandbox-1
	// uid-1 ContainerStarted web-1
	// default web [10.88.0.5] nginx CONTAINER_RUNNING
}

// Inspect reads one pod's status straight from the runtime.
func ExampleInspect() {
	st, err := pleg.Inspect(context.Background(), fakeRuntime(), "uid-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(st.SandboxStatuses), "sandbox,", len(st.ContainerStatuses), "container, IPs", st.IPs)
	// Output: 1 sandbox, 1 container, IPs [10.88.0.5]
}
