package imagegc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/nodekit-dev/nodekit/imagegc"
)

// memRuntime is a tiny in-memory CRI runtime; a real agent passes its CRI
// clients (k8s.io/cri-client) instead.
type memRuntime struct {
	images     []*runtimeapi.Image
	containers []*runtimeapi.Container
}

func (m *memRuntime) ListImages(context.Context, *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	return m.images, nil
}

func (m *memRuntime) RemoveImage(_ context.Context, spec *runtimeapi.ImageSpec) error {
	m.images = slices.DeleteFunc(m.images, func(i *runtimeapi.Image) bool { return i.Id == spec.Image })
	return nil
}

func (m *memRuntime) ImageFsInfo(context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	return nil, errors.New("not used: the example gives its own FsStats")
}

func (m *memRuntime) ListContainers(context.Context, *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	return m.containers, nil
}

func (m *memRuntime) ContainerStatus(_ context.Context, id string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	for _, c := range m.containers {
		if c.Id == id {
			return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: id}}, nil
		}
	}
	return nil, status.Error(codes.NotFound, "no such container")
}

func (m *memRuntime) StopContainer(context.Context, string, int64) error { return nil }

func (m *memRuntime) RemoveContainer(_ context.Context, id string) error {
	m.containers = slices.DeleteFunc(m.containers, func(c *runtimeapi.Container) bool { return c.Id == id })
	return nil
}

func (m *memRuntime) ListPodSandbox(context.Context, *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	return nil, nil
}
func (m *memRuntime) StopPodSandbox(context.Context, string) error   { return nil }
func (m *memRuntime) RemovePodSandbox(context.Context, string) error { return nil }

// Image garbage collection on an image filesystem at 90 % usage: the images
// in use (by an exited container too) and pinned ones stay, the others go,
// least recently used first, once they are older than MinAge.
func Example() {
	rt := &memRuntime{
		images: []*runtimeapi.Image{
			{Id: "sha256:web", Size: 300},
			{Id: "sha256:job", Size: 200},
			{Id: "sha256:pause", Size: 1, Pinned: true},
			{Id: "sha256:old", Size: 400},
		},
		containers: []*runtimeapi.Container{
			{Id: "c1", ImageRef: "sha256:web", State: runtimeapi.ContainerState_CONTAINER_RUNNING},
			{Id: "c2", ImageRef: "sha256:job", State: runtimeapi.ContainerState_CONTAINER_EXITED},
		},
	}
	opts, err := imagegc.OptionsFromConfig(nil) // the kubelet's defaults: 85 %, 80 %, 2 min
	if err != nil {
		panic(err)
	}
	clock := testingclock.NewFakeClock(time.Now())
	opts.Images, opts.Runtime, opts.Clock = rt, rt, clock
	opts.FsStats = imagegc.FsStatsFunc(func(context.Context) (capacity, available uint64, err error) {
		return 10000, 1000, nil // 90 % used: 1000 bytes to free to reach 80 %
	})
	opts.Recorder = func(reason, message string) { fmt.Println("event:", reason) }
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	gc, err := imagegc.New(opts)
	if err != nil {
		panic(err)
	}

	ctx := context.Background()
	var fe *imagegc.FreeDiskSpaceError
	if err := gc.GarbageCollect(ctx); errors.As(err, &fe) {
		fmt.Printf("first collection: freed %d of %d bytes\n", fe.Freed, fe.Wanted)
	}
	clock.Step(3 * time.Minute) // older than MinAge now
	if err := gc.GarbageCollect(ctx); errors.As(err, &fe) {
		fmt.Printf("second collection: freed %d of %d bytes\n", fe.Freed, fe.Wanted)
	}
	for _, img := range rt.images {
		fmt.Println("kept", img.Id)
	}
	// Output:
	// event: FreeDiskSpaceFailed
	// first collection: freed 0 of 1000 bytes
	// event: FreeDiskSpaceFailed
	// second collection: freed 400 of 1000 bytes
	// kept sha256:web
	// kept sha256:job
	// kept sha256:pause
}

// Container garbage collection keeps the newest dead instance of each
// container of a live pod, for its last state and logs.
func ExampleContainerGC_GarbageCollect() {
	now := time.Now()
	dead := func(id string, age time.Duration) *runtimeapi.Container {
		return &runtimeapi.Container{
			Id: id, State: runtimeapi.ContainerState_CONTAINER_EXITED, CreatedAt: now.Add(-age).UnixNano(),
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Labels:   map[string]string{kubetypes.KubernetesPodUIDLabel: "pod-1"},
		}
	}
	rt := &memRuntime{containers: []*runtimeapi.Container{dead("try-3", time.Minute), dead("try-1", 3*time.Minute), dead("try-2", 2*time.Minute)}}
	gc, err := imagegc.NewContainerGC(imagegc.ContainerOptions{
		Runtime:    rt,
		PodDeleted: func(types.UID) bool { return false }, // the agent still has every pod
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	if err := gc.GarbageCollect(context.Background(), true, false); err != nil {
		panic(err)
	}
	for _, c := range rt.containers {
		fmt.Println("kept", c.Id)
	}
	// Output:
	// kept try-3
}
