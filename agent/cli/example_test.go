package cli_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodekit-dev/nodekit/agent/cli"
)

// A daemon with its own flags and the commands of the CLI: here asked for
// its version.
func ExampleNewCommand() {
	fs := flag.NewFlagSet("kubelet", flag.ContinueOnError)
	manifests := fs.String("pod-manifest-path", "", "directory of static pod manifests")
	cmd := cli.NewCommand(cli.Options{
		Version: "0.1.0",
		Flags:   []cli.FlagGroup{{Title: "Kubelet flags", Flags: fs}},
		Run: func(ctx context.Context) error {
			fmt.Println("running the agent with the pods of", *manifests)
			return nil
		},
	})
	cmd.SetOut(os.Stdout)
	code := cli.Main(context.Background(), cmd, []string{"--version"})
	fmt.Println("exit code", code)
	// Output:
	// nodekit-kubelet v0.1.0 (kubelet API v1.37.2)
	// exit code 0
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
	if err := cli.PrintPods(os.Stdout, pods, now); err != nil {
		fmt.Println(err)
	}
	// Output:
	// NAME      READY   STATUS             RESTARTS      AGE
	// crasher   0/1     CrashLoopBackOff   4 (90s ago)   5m
	// web       1/1     Running            0             3h
}
