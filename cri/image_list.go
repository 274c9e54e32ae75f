package cri

import (
	"context"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListImages lists images, optionally only those matching filter.image (id, tag or
// digest).
func (s *Server) ListImages(ctx context.Context, req *runtime.ListImagesRequest) (*runtime.ListImagesResponse, error) {
	if ref := req.GetFilter().GetImage().GetImage(); ref != "" {
		img, err := s.images.Get(ref)
		if err != nil {
			return &runtime.ListImagesResponse{}, nil
		}
		return &runtime.ListImagesResponse{Images: []*runtime.Image{criImage(img)}}, nil
	}
	imgs, err := s.images.List()
	if err != nil {
		return nil, grpcError(codes.Internal, err, "list images")
	}
	out := make([]*runtime.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, criImage(img))
	}
	return &runtime.ListImagesResponse{Images: out}, nil
}
