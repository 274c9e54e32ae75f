package cri

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainerStats reports the stats of the containers matching the filter (id
// or id prefix, sandbox id or prefix, labels), as ContainerStats does. A
// container whose cgroup cannot be read is reported without CPU and memory.
func (s *Server) ListContainerStats(ctx context.Context, req *runtime.ListContainerStatsRequest) (*runtime.ListContainerStatsResponse, error) {
	s.pruneStats()
	f := containerStatsFilter(req.GetFilter())
	out := []*runtime.ContainerStats{}
	for _, c := range s.objs.listContainers() {
		rec := c.snapshot()
		if !containerMatches(f, &rec) {
			continue
		}
		cs, err := s.containerStats(&rec)
		if err != nil {
			s.log.Debug("container stats", "container", rec.ID, "err", err)
		}
		out = append(out, cs)
	}
	return &runtime.ListContainerStatsResponse{Stats: out}, nil
}

// containerStatsFilter is f as a ListContainers filter.
func containerStatsFilter(f *runtime.ContainerStatsFilter) *runtime.ContainerFilter {
	if f == nil {
		return nil
	}
	return &runtime.ContainerFilter{Id: f.GetId(), PodSandboxId: f.GetPodSandboxId(), LabelSelector: f.GetLabelSelector()}
}
