package cri

import (
	"context"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemoveImage removes an image, named by id, tag or digest, with all its tags. It is
// idempotent. Layers that running containers still use stay until they are removed.
func (s *Server) RemoveImage(ctx context.Context, req *runtime.RemoveImageRequest) (*runtime.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("image.image", "empty")
	}
	if err := s.images.Remove(ref); err != nil {
		return nil, grpcError(codes.Internal, err, "remove image %q", ref)
	}
	s.gcLayers()
	return &runtime.RemoveImageResponse{}, nil
}
