package cri

import (
	"context"
	"strings"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandboxStats reports the ready pods matching the filter (id or id
// prefix, labels), as PodSandboxStats does. What cannot be read is left out and
// logged.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtime.ListPodSandboxStatsRequest) (*runtime.ListPodSandboxStatsResponse, error) {
	s.pruneStats()
	f := req.GetFilter()
	out := []*runtime.PodSandboxStats{}
	for _, sb := range s.objs.listSandboxes() {
		rec := sb.snapshot()
		if rec.State != runtime.PodSandboxState_SANDBOX_READY {
			continue
		}
		if f.GetId() != "" && !strings.HasPrefix(rec.ID, f.GetId()) {
			continue
		}
		if !matchLabels(f.GetLabelSelector(), rec.Config.GetLabels()) {
			continue
		}
		ps, err := s.podStats(&rec)
		if err != nil {
			s.log.Debug("pod sandbox stats", "sandbox", rec.ID, "err", err)
		}
		out = append(out, ps)
	}
	return &runtime.ListPodSandboxStatsResponse{Stats: out}, nil
}
