package cri

import (
	"context"
	"errors"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/image"
)

// RemoveContainer removes a container, killing it first if it still runs. Removing a
// container that does not exist succeeds.
func (s *Server) RemoveContainer(ctx context.Context, req *runtime.RemoveContainerRequest) (*runtime.RemoveContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("container_id", "empty")
	}
	c, err := s.objs.container(req.GetContainerId())
	if status.Code(err) == codes.NotFound {
		return &runtime.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.removeContainer(ctx, c); err != nil {
		return nil, err
	}
	return &runtime.RemoveContainerResponse{}, nil
}

func (s *Server) removeContainer(ctx context.Context, c *container) error {
	if err := s.stopContainer(ctx, c, 0); err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	rec := c.snapshot()
	if _, err := s.objs.container(rec.ID); err != nil {
		return nil // removed meanwhile
	}
	// The monitor deletes the runtime's state once the exit is recorded; wait for it
	// to finish, then make sure nothing is left whoever did the work.
	if rec.MonitorPid > 0 && !waitProcessGone(rec.MonitorPid, rec.MonitorTime, 10_000) {
		s.log.Warn("monitor still running after the container exited", "container", rec.ID, "monitor", rec.MonitorPid)
	}
	if err := s.runc.Delete(ctx, rec.ID); err != nil {
		return status.Errorf(codes.Internal, "remove container %s: %v", rec.ID, err)
	}
	if err := s.teardownContainer(rec.ID); err != nil {
		return status.Errorf(codes.Internal, "remove container %s: %v", rec.ID, err)
	}
	s.objs.removeContainer(rec.ID)
	sbRec, err := s.objs.sandbox(rec.SandboxID)
	if err == nil {
		s.objs.release(containerNameKey(rec.Config.GetMetadata(), sbRec.snapshot().Config.GetMetadata()), rec.ID)
	} else {
		s.objs.releaseID(rec.ID)
	}
	if _, err := s.images.Get(rec.ImageID); errors.Is(err, image.ErrNotFound) {
		// The image went while this container used it: its layers may be garbage now.
		s.gcLayers()
	}
	s.log.Info("container removed", "container", rec.ID)
	s.emit(rec.ID, rec.SandboxID, runtime.ContainerEventType_CONTAINER_DELETED_EVENT)
	return nil
}

// teardownContainer removes a container's mounts and files; safe to repeat. The
// record goes last, so a crash midway leaves a record to retry with.
func (s *Server) teardownContainer(id string) error {
	if err := unmount(s.paths.rootfs(id)); err != nil {
		return err
	}
	if err := os.RemoveAll(s.paths.containerRoot(id)); err != nil {
		return err
	}
	if err := os.Remove(s.paths.exitFile(id)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.RemoveAll(s.paths.containerState(id))
}

// gcLayers removes the layers that neither an image nor a container uses.
func (s *Server) gcLayers() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inUse := map[string]bool{}
	for _, c := range s.objs.listContainers() {
		for _, l := range c.rec.Layers {
			inUse[l] = true
		}
	}
	if err := s.images.GC(ctx, func(diffID string) bool { return inUse[diffID] }); err != nil {
		s.log.Warn("image layer garbage collection", "err", err)
	}
}
