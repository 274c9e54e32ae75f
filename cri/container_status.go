package cri

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStatus reports a container's state, times, exit code and reason, image,
// mounts and log path.
func (s *Server) ContainerStatus(ctx context.Context, req *runtime.ContainerStatusRequest) (*runtime.ContainerStatusResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("container_id", "empty")
	}
	c, err := s.objs.container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	rec := c.snapshot()
	resp := &runtime.ContainerStatusResponse{Status: s.containerStatus(&rec)}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"sandboxID":  rec.SandboxID,
			"pid":        rec.Pid,
			"monitorPid": rec.MonitorPid,
			"bundle":     s.paths.bundle(rec.ID),
			"layers":     rec.Layers,
			// Each image volume: its mount's index, image and host source.
			"imageVolumes": rec.ImageVolumes,
		})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func (s *Server) containerStatus(rec *containerRecord) *runtime.ContainerStatus {
	cfg := rec.Config
	st := &runtime.ContainerStatus{
		Id:          rec.ID,
		Metadata:    cfg.GetMetadata(),
		State:       rec.State,
		CreatedAt:   rec.CreatedAt,
		StartedAt:   rec.StartedAt,
		FinishedAt:  rec.FinishedAt,
		ExitCode:    rec.ExitCode,
		Image:       &runtime.ImageSpec{Image: rec.ImageName, Annotations: cfg.GetImage().GetAnnotations()},
		ImageRef:    rec.ImageRef,
		ImageId:     rec.ImageID,
		Reason:      rec.Reason,
		Message:     rec.Message,
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
		Mounts:      cfg.GetMounts(),
		LogPath:     rec.LogPath,
		User:        rec.User,
		Resources:   &runtime.ContainerResources{Linux: cfg.GetLinux().GetResources()},
	}
	if rec.StopSignal != "" {
		st.StopSignal = criSignal(stopSignal(rec.StopSignal))
	}
	return st
}

// specOf reads a container's OCI spec back from its bundle.
func (s *Server) specOf(id string) (*specs.Spec, error) {
	var sp specs.Spec
	data, err := os.ReadFile(filepath.Join(s.paths.bundle(id), "config.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &sp); err != nil {
		return nil, err
	}
	return &sp, nil
}
