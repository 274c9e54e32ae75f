package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodekit-dev/nodekit/agent/server"
)

// staticPods is a Provider with a fixed set of pods and no logs.
type staticPods []*v1.Pod

func (p staticPods) GetPods() []*v1.Pod                                { return p }
func (p staticPods) GetRunningPods(context.Context) ([]*v1.Pod, error) { return p, nil }
func (p staticPods) Summary(context.Context) (*statsapi.Summary, error) {
	return &statsapi.Summary{}, nil
}
func (p staticPods) GetContainerLogPath(ns, pod, ctr string, previous bool) (string, error) {
	return "", fmt.Errorf("%s/%s/%s: %w", ns, pod, ctr, server.ErrNotFound)
}

// The local socket serves the full API to local root tools: here the pods
// table of `nodekit-kubelet get pods`.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "kubelet-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	created := time.Now().Add(-2 * time.Hour)
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-node-a", Namespace: "default", CreationTimestamp: metav1.NewTime(created)}}
	pod.Spec.Containers = []v1.Container{{Name: "nginx"}}
	pod.Status.Phase = v1.PodPending
	pod.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "nginx",
		State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}

	srv, err := server.New(server.Options{
		Provider:    staticPods{pod},
		Port:        -1, // this example serves the local socket only
		HealthzPort: -1,
		LocalSocket: filepath.Join(dir, "kubelet.sock"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()

	pods, err := server.ListPods(context.Background(), srv.Addrs().LocalSocket)
	if err != nil {
		fmt.Println(err)
	} else if err := server.PrintPods(os.Stdout, pods.Items, created.Add(2*time.Hour)); err != nil {
		fmt.Println(err)
	}
	stop()
	if err := <-done; err != nil {
		fmt.Println(err)
	}
	// Output:
	// NAME         READY   STATUS              RESTARTS   AGE
	// web-node-a   0/1     ContainerCreating   0          120m
}

func ExamplePrintPods() {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	pod := func(name string, age time.Duration, status v1.PodStatus) v1.Pod {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
		p.Spec.Containers = []v1.Container{{Name: "app"}}
		p.CreationTimestamp.Time = now.Add(-age)
		p.Status = status
		return *p
	}
	running := v1.ContainerStatus{Name: "app", Ready: true, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}
	crashing := v1.ContainerStatus{Name: "app", RestartCount: 4,
		State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}
	crashing.LastTerminationState.Terminated = &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
	crashing.LastTerminationState.Terminated.FinishedAt.Time = now.Add(-90 * time.Second)

	pods := []v1.Pod{
		pod("web", 3*time.Hour, v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: []v1.ContainerStatus{running}}),
		pod("crasher", 5*time.Minute, v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: []v1.ContainerStatus{crashing}}),
	}
	if err := server.PrintPods(os.Stdout, pods, now); err != nil {
		fmt.Println(err)
	}
	// Output:
	// NAME      READY   STATUS             RESTARTS      AGE
	// crasher   0/1     CrashLoopBackOff   4 (90s ago)   5m
	// web       1/1     Running            0             3h
}
