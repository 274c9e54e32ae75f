package cri

import (
	"context"
	"strings"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandbox lists sandboxes matching the filter (id or id prefix, state, labels).
func (s *Server) ListPodSandbox(ctx context.Context, req *runtime.ListPodSandboxRequest) (*runtime.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	var items []*runtime.PodSandbox
	for _, sb := range s.objs.listSandboxes() {
		rec := sb.snapshot()
		if f.GetId() != "" && !strings.HasPrefix(rec.ID, f.GetId()) {
			continue
		}
		if f.GetState() != nil && f.GetState().GetState() != rec.State {
			continue
		}
		if !matchLabels(f.GetLabelSelector(), rec.Config.GetLabels()) {
			continue
		}
		items = append(items, &runtime.PodSandbox{
			Id:             rec.ID,
			Metadata:       rec.Config.GetMetadata(),
			State:          rec.State,
			CreatedAt:      rec.CreatedAt,
			Labels:         rec.Config.GetLabels(),
			Annotations:    rec.Config.GetAnnotations(),
			RuntimeHandler: rec.Handler,
		})
	}
	return &runtime.ListPodSandboxResponse{Items: items}, nil
}
