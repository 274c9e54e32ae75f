package imagegc

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"
)

// The CRI clients satisfy the interfaces the collectors ask for.
var (
	_ Images          = internalapi.ImageManagerService(nil)
	_ ContainerLister = internalapi.RuntimeService(nil)
	_ Runtime         = internalapi.RuntimeService(nil)
)

// fakeRuntime is an in-memory CRI runtime and image service. Every call is
// recorded as "<Method> <id>".
type fakeRuntime struct {
	mu         sync.Mutex
	images     []*runtimeapi.Image
	containers []*runtimeapi.Container
	sandboxes  []*runtimeapi.PodSandbox
	logPaths   map[string]string // container ID -> log path
	mountpoint string            // ImageFsInfo's
	failRemove map[string]error  // image, container or sandbox ID -> error of its removal
	calls      []string

	listedImages chan struct{} // if set, ListImages sends on it first
}

func notFound(what, id string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", what, id)
}

func (f *fakeRuntime) record(call string) { f.calls = append(f.calls, call) }

// Calls returns the calls made so far whose method is one of methods (all
// calls without methods).
func (f *fakeRuntime) Calls(methods ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		for _, m := range methods {
			if len(c) > len(m) && c[:len(m)+1] == m+" " {
				out = append(out, c)
			}
		}
		if len(methods) == 0 {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeRuntime) ListImages(_ context.Context, _ *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	if f.listedImages != nil {
		f.listedImages <- struct{}{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.images), nil
}

func (f *fakeRuntime) RemoveImage(_ context.Context, spec *runtimeapi.ImageSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := spec.GetImage()
	f.record("RemoveImage " + id)
	if err := f.failRemove[id]; err != nil {
		return err
	}
	n := len(f.images)
	f.images = slices.DeleteFunc(f.images, func(i *runtimeapi.Image) bool { return i.GetId() == id })
	if len(f.images) == n {
		return notFound("image", id)
	}
	return nil
}

func (f *fakeRuntime) ImageFsInfo(context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mountpoint == "" {
		return &runtimeapi.ImageFsInfoResponse{}, nil
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{{
		FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: f.mountpoint},
	}}}, nil
}

func (f *fakeRuntime) ListContainers(_ context.Context, _ *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.containers), nil
}

func (f *fakeRuntime) container(id string) *runtimeapi.Container {
	for _, c := range f.containers {
		if c.GetId() == id {
			return c
		}
	}
	return nil
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, id string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.container(id)
	if c == nil {
		return nil, notFound("container", id)
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{
		Id: c.GetId(), Metadata: c.GetMetadata(), State: c.GetState(), CreatedAt: c.GetCreatedAt(),
		Labels: c.GetLabels(), Annotations: c.GetAnnotations(), LogPath: f.logPaths[id],
	}}, nil
}

func (f *fakeRuntime) StopContainer(_ context.Context, id string, timeout int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(fmt.Sprintf("StopContainer %s %d", id, timeout))
	c := f.container(id)
	if c == nil {
		return notFound("container", id)
	}
	c.State = runtimeapi.ContainerState_CONTAINER_EXITED
	return nil
}

func (f *fakeRuntime) RemoveContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemoveContainer " + id)
	if err := f.failRemove[id]; err != nil {
		return err
	}
	f.containers = slices.DeleteFunc(f.containers, func(c *runtimeapi.Container) bool { return c.GetId() == id })
	return nil
}

func (f *fakeRuntime) ListPodSandbox(_ context.Context, _ *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sandboxes), nil
}

func (f *fakeRuntime) StopPodSandbox(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("StopPodSandbox " + id)
	for _, s := range f.sandboxes {
		if s.GetId() == id {
			s.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		}
	}
	return nil
}

func (f *fakeRuntime) RemovePodSandbox(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("RemovePodSandbox " + id)
	if err := f.failRemove[id]; err != nil {
		return err
	}
	f.sandboxes = slices.DeleteFunc(f.sandboxes, func(s *runtimeapi.PodSandbox) bool { return s.GetId() == id })
	return nil
}

// Helpers for the runtime's contents, under the lock.

func (f *fakeRuntime) setImages(images ...*runtimeapi.Image) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images = images
}

func (f *fakeRuntime) setContainers(containers ...*runtimeapi.Container) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers = containers
}

func (f *fakeRuntime) imageIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, i := range f.images {
		ids = append(ids, i.GetId())
	}
	slices.Sort(ids)
	return ids
}

func (f *fakeRuntime) containerIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, c := range f.containers {
		ids = append(ids, c.GetId())
	}
	slices.Sort(ids)
	return ids
}

func (f *fakeRuntime) sandboxIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, s := range f.sandboxes {
		ids = append(ids, s.GetId())
	}
	slices.Sort(ids)
	return ids
}

func image(id string, size uint64) *runtimeapi.Image {
	return &runtimeapi.Image{Id: id, Size: size, RepoTags: []string{"example.com/" + id + ":latest"}, RepoDigests: []string{"example.com/" + id + "@sha256:" + id}}
}

func pinned(img *runtimeapi.Image) *runtimeapi.Image {
	img.Pinned = true
	return img
}

// podContainer is a container of pod uid (also its name), created at created.
func podContainer(id, uid, name string, created time.Time, state runtimeapi.ContainerState) *runtimeapi.Container {
	return &runtimeapi.Container{
		Id:           id,
		PodSandboxId: "sb-" + uid,
		Metadata:     &runtimeapi.ContainerMetadata{Name: name},
		State:        state,
		CreatedAt:    created.UnixNano(),
		Labels: map[string]string{
			kubetypes.KubernetesPodUIDLabel:        uid,
			kubetypes.KubernetesContainerNameLabel: name,
		},
	}
}

// usingImage is a container of pod "p" in state that uses img, named the way
// the runtime names it in field ("id", "ref" or "tag").
func usingImage(id string, img *runtimeapi.Image, field string, state runtimeapi.ContainerState) *runtimeapi.Container {
	c := podContainer(id, "p", id, time.Unix(0, 0), state)
	switch field {
	case "id":
		c.ImageId = img.GetId()
	case "ref":
		c.ImageRef = img.GetRepoDigests()[0]
	case "tag":
		c.Image = &runtimeapi.ImageSpec{Image: img.GetRepoTags()[0]}
	}
	return c
}
