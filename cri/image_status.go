package cri

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/image"
)

// ImageStatus reports an image by id, tag or digest; an unknown image is a nil
// image, not an error.
func (s *Server) ImageStatus(ctx context.Context, req *runtime.ImageStatusRequest) (*runtime.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("image.image", "empty")
	}
	img, err := s.images.Get(ref)
	if errors.Is(err, image.ErrNotFound) {
		return &runtime.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, grpcError(codes.Internal, err, "image status %q", ref)
	}
	resp := &runtime.ImageStatusResponse{Image: criImage(img)}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{"config": img.Config, "layers": img.Layers})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func criImage(img image.Image) *runtime.Image {
	out := &runtime.Image{
		Id:          img.ID,
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        img.Size,
		Spec:        &runtime.ImageSpec{Image: img.ID},
	}
	uid, name := imageUser(img.Config.User)
	if uid != nil {
		out.Uid = &runtime.Int64Value{Value: *uid}
	}
	out.Username = name
	return out
}

// imageUser splits an image's USER into a numeric uid or a user name (the group part
// is dropped, as the CRI reports only the user).
func imageUser(user string) (*int64, string) {
	if user == "" {
		return nil, ""
	}
	u, _, _ := strings.Cut(user, ":")
	if n, err := strconv.ParseInt(u, 10, 64); err == nil {
		return &n, ""
	}
	return nil, u
}
