package cri

import (
	"context"
	"encoding/json"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodSandboxStatus reports a sandbox's state, network and namespaces.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtime.PodSandboxStatusRequest) (*runtime.PodSandboxStatusResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("pod_sandbox_id", "empty")
	}
	sb, err := s.objs.sandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	rec := sb.snapshot()
	resp := &runtime.PodSandboxStatusResponse{Status: sandboxStatus(&rec)}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"hostname":     rec.Hostname,
			"namespaces":   rec.Namespace,
			"cgroupParent": rec.Cgroup,
			"shm":          rec.Shm,
			"network":      rec.Network,
		})
		resp.Info = map[string]string{"info": string(info)}
	}
	// Container statuses ride along so an evented PLEG needs one call per pod.
	resp.ContainersStatuses = s.sandboxContainerStatuses(rec.ID)
	resp.Timestamp = nowNano()
	return resp, nil
}

func sandboxStatus(rec *sandboxRecord) *runtime.PodSandboxStatus {
	cfg := rec.Config
	return &runtime.PodSandboxStatus{
		Id:        rec.ID,
		Metadata:  cfg.GetMetadata(),
		State:     rec.State,
		CreatedAt: rec.CreatedAt,
		Network:   networkStatus(rec),
		Linux: &runtime.LinuxPodSandboxStatus{
			Namespaces: &runtime.Namespace{
				Options: cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(),
			},
		},
		Labels:         cfg.GetLabels(),
		Annotations:    cfg.GetAnnotations(),
		RuntimeHandler: rec.Handler,
	}
}

func (s *Server) sandboxContainerStatuses(id string) []*runtime.ContainerStatus {
	var out []*runtime.ContainerStatus
	for _, c := range s.objs.containersOf(id) {
		rec := c.snapshot()
		out = append(out, s.containerStatus(&rec))
	}
	return out
}
