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
	// A container that ran was released when it stopped; one that never ran may
	// still have runtime state from a start that failed midway.
	if err := s.oci.Delete(ctx, rec.ID); err != nil {
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
	if s.anImageGone(&rec) {
		// An image went while this container used it: its layers may be garbage now.
		s.gcLayers()
	}
	s.log.Info("container removed", "container", rec.ID)
	s.emit(rec.ID, rec.SandboxID, runtime.ContainerEventType_CONTAINER_DELETED_EVENT)
	return nil
}

// teardownContainer removes a container's mounts (image volumes, rootfs) and
// files; safe to repeat. The record goes last, so a crash midway leaves a record
// to retry with. Directories are moved to the trash (a rename) and deleted in the
// background: a writable layer can take long to delete, and nothing refers to it
// any more. Nothing is moved while a mount below it remains.
func (s *Server) teardownContainer(id string) error {
	if err := s.unmountImageVolumes(id); err != nil {
		return err
	}
	if err := unmount(s.paths.rootfs(id)); err != nil {
		return err
	}
	if err := s.trash(s.paths.containerRoot(id)); err != nil {
		return err
	}
	if err := os.Remove(s.paths.exitFile(id)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return s.trash(s.paths.containerState(id))
}

// anImageGone reports whether the container's image, or an image it mounts as a
// volume (which only another user of the store can have removed), is gone.
func (s *Server) anImageGone(rec *containerRecord) bool {
	ids := []string{rec.ImageID}
	for _, v := range rec.ImageVolumes {
		ids = append(ids, v.ImageID)
	}
	for _, id := range ids {
		if _, err := s.images.Get(id); errors.Is(err, image.ErrNotFound) {
			return true
		}
	}
	return false
}

// gcLayers removes the layers that neither an image nor a container (as its
// rootfs or an image volume) uses.
func (s *Server) gcLayers() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inUse := map[string]bool{}
	for _, c := range s.objs.listContainers() {
		for _, l := range c.layers {
			inUse[l] = true
		}
		for _, v := range c.imageVolumes {
			for _, l := range v.Layers {
				inUse[l] = true
			}
		}
	}
	if err := s.images.GC(ctx, func(diffID string) bool { return inUse[diffID] }); err != nil {
		s.log.Warn("image layer garbage collection", "err", err)
	}
}
