package cri

import (
	"context"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStats reports one container's CPU, memory and swap use (from its
// cgroup, while it runs) and its writable layer's size.
func (s *Server) ContainerStats(ctx context.Context, req *runtime.ContainerStatsRequest) (*runtime.ContainerStatsResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("container_id", "empty")
	}
	c, err := s.objs.container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	rec := c.snapshot()
	cs, err := s.containerStats(&rec)
	if err != nil {
		return nil, grpcError(codes.Internal, err, "stats of container %s", rec.ID)
	}
	return &runtime.ContainerStatsResponse{Stats: cs}, nil
}
