package relisttime_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/relisttime"
)

// fakeRuntime holds n pods, each a ready sandbox and a running container, and
// counts its status calls.
type fakeRuntime struct {
	n int
	// fail fails the list calls after the first (Measure's own count).
	fail    error
	lists   atomic.Int32
	inspect atomic.Int32
}

func (f *fakeRuntime) ListPodSandbox(context.Context, *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	if f.lists.Add(1) > 1 && f.fail != nil {
		return nil, f.fail
	}
	var out []*runtimeapi.PodSandbox
	for i := range f.n {
		out = append(out, &runtimeapi.PodSandbox{Id: fmt.Sprintf("sb%d", i), State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("p%d", i), Namespace: "ns", Uid: fmt.Sprintf("uid%d", i)},
			Labels:   map[string]string{"io.kubernetes.pod.uid": fmt.Sprintf("uid%d", i)}})
	}
	return out, nil
}

func (f *fakeRuntime) ListContainers(context.Context, *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	var out []*runtimeapi.Container
	for i := range f.n {
		out = append(out, &runtimeapi.Container{Id: fmt.Sprintf("c%d", i), PodSandboxId: fmt.Sprintf("sb%d", i), State: runtimeapi.ContainerState_CONTAINER_RUNNING,
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Labels:   map[string]string{"io.kubernetes.pod.uid": fmt.Sprintf("uid%d", i), "io.kubernetes.container.name": "app"}})
	}
	return out, nil
}

func (f *fakeRuntime) PodSandboxStatus(_ context.Context, id string, _ bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	f.inspect.Add(1)
	var i int
	if _, err := fmt.Sscanf(id, "sb%d", &i); err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{Id: id, State: runtimeapi.PodSandboxState_SANDBOX_READY,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("p%d", i), Namespace: "ns", Uid: fmt.Sprintf("uid%d", i)},
		Network:  &runtimeapi.PodSandboxNetworkStatus{Ip: "10.0.0.1"}}}, nil
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, id string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: id, State: runtimeapi.ContainerState_CONTAINER_RUNNING,
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, StartedAt: time.Now().UnixNano(), Image: &runtimeapi.ImageSpec{Image: "busybox"}}}, nil
}

func (f *fakeRuntime) GetContainerEvents(ctx context.Context, _ chan *runtimeapi.ContainerEventResponse, _ func(runtimeapi.RuntimeService_GetContainerEventsClient)) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestMeasure(t *testing.T) {
	f := &fakeRuntime{n: 10}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	timing, err := relisttime.Measure(ctx, f, 3)
	if err != nil {
		t.Fatal(err)
	}
	if timing.Pods != 10 || timing.Cold <= 0 || timing.Warm <= 0 {
		t.Fatalf("timing %+v, want 10 pods and durations", timing)
	}
	// Only the cold relist inspected the pods: the warm ones found nothing
	// changed.
	if f.inspect.Load() != 10 {
		t.Fatalf("%d sandbox status calls, want 10 (the cold relist's)", f.inspect.Load())
	}
}

func TestMeasureFailingRuntime(t *testing.T) {
	f := &fakeRuntime{n: 1, fail: errors.New("runtime down")}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := relisttime.Measure(ctx, f, 1); err == nil || !strings.Contains(err.Error(), "runtime down") {
		t.Fatalf("a failing runtime: %v", err)
	}
}
