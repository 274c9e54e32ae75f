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

// The local socket serves the full API to local root tools, such as
// `nodekit-kubelet get pods` (package agent/cli): here the pods it lists.
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
	} else {
		for _, p := range pods.Items {
			fmt.Println(p.Namespace, p.Name, p.Status.Phase, p.Status.ContainerStatuses[0].State.Waiting.Reason)
		}
	}
	stop()
	if err := <-done; err != nil {
		fmt.Println(err)
	}
	// Output:
	// default web-node-a Pending ContainerCreating
}
