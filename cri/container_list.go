package cri

import (
	"context"
	"strings"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers matching the filter (id or id prefix, state,
// sandbox id or prefix, labels).
func (s *Server) ListContainers(ctx context.Context, req *runtime.ListContainersRequest) (*runtime.ListContainersResponse, error) {
	f := req.GetFilter()
	var out []*runtime.Container
	for _, c := range s.objs.listContainers() {
		rec := c.snapshot()
		if !containerMatches(f, &rec) {
			continue
		}
		out = append(out, &runtime.Container{
			Id:           rec.ID,
			PodSandboxId: rec.SandboxID,
			Metadata:     rec.Config.GetMetadata(),
			Image:        &runtime.ImageSpec{Image: rec.ImageName},
			ImageRef:     rec.ImageRef,
			ImageId:      rec.ImageID,
			State:        rec.State,
			CreatedAt:    rec.CreatedAt,
			Labels:       rec.Config.GetLabels(),
			Annotations:  rec.Config.GetAnnotations(),
		})
	}
	return &runtime.ListContainersResponse{Containers: out}, nil
}

func containerMatches(f *runtime.ContainerFilter, rec *containerRecord) bool {
	if f == nil {
		return true
	}
	if f.GetId() != "" && !strings.HasPrefix(rec.ID, f.GetId()) {
		return false
	}
	if f.GetPodSandboxId() != "" && !strings.HasPrefix(rec.SandboxID, f.GetPodSandboxId()) {
		return false
	}
	if f.GetState() != nil && f.GetState().GetState() != rec.State {
		return false
	}
	return matchLabels(f.GetLabelSelector(), rec.Config.GetLabels())
}
