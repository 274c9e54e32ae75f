package cri

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/image"
)

// RemoveImage removes an image, named by id, tag or digest, with all its tags. It is
// idempotent. Layers that running containers still use stay until they are removed.
//
// An image that a container mounts as a volume (config.mounts[i].image) is not
// removed while that container exists: RemoveImage fails with FailedPrecondition
// naming the containers, as CRI-O refuses to remove an image in use. (containerd
// instead keeps the image's content alive with a lease and removes the image.)
// The kubelet's image garbage collection then skips the image and tries again on
// a later round; ListImages and ImageFsInfo report it as usual meanwhile. An
// image used only as a container's own image (config.image) is removed as
// before: the container keeps its layers.
func (s *Server) RemoveImage(ctx context.Context, req *runtime.RemoveImageRequest) (*runtime.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("image.image", "empty")
	}
	s.imageUse.Lock()
	defer s.imageUse.Unlock()
	img, err := s.images.Get(ref)
	if errors.Is(err, image.ErrNotFound) {
		return &runtime.RemoveImageResponse{}, nil
	}
	if err != nil {
		return nil, grpcError(codes.Internal, err, "remove image %q", ref)
	}
	if users := s.imageVolumeUsers(img.ID); len(users) > 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "remove image %q: image %s is mounted as a volume by container(s) %s; remove them first", ref, img.ID, strings.Join(users, ", "))
	}
	if err := s.images.Remove(img.ID); err != nil {
		return nil, grpcError(codes.Internal, err, "remove image %q", ref)
	}
	s.gcLayers()
	return &runtime.RemoveImageResponse{}, nil
}
