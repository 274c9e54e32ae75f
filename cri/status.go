package cri

import (
	"context"
	"encoding/json"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Status reports the RuntimeReady and NetworkReady conditions. Pod networking beyond
// loopback (CNI) is not part of the runtime yet, so NetworkReady is false with a
// reason that says so.
func (s *Server) Status(ctx context.Context, req *runtime.StatusRequest) (*runtime.StatusResponse, error) {
	resp := &runtime.StatusResponse{Status: &runtime.RuntimeStatus{Conditions: []*runtime.RuntimeCondition{
		{Type: runtime.RuntimeReady, Status: true},
		{
			Type:    runtime.NetworkReady,
			Status:  false,
			Reason:  "NetworkPluginNotReady",
			Message: "nodekit-cri has no CNI networking yet: pods get a private network namespace with loopback only",
		},
	}}}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"root":         s.opts.Root,
			"state":        s.opts.State,
			"runtime":      s.opts.Runtime,
			"monitor":      s.opts.Monitor,
			"cgroupDriver": s.opts.CgroupDriver,
		})
		resp.Info = map[string]string{"config": string(info)}
	}
	return resp, nil
}

// RuntimeConfig reports the cgroup driver, so the kubelet can match it.
func (s *Server) RuntimeConfig(ctx context.Context, req *runtime.RuntimeConfigRequest) (*runtime.RuntimeConfigResponse, error) {
	return &runtime.RuntimeConfigResponse{Linux: &runtime.LinuxRuntimeConfiguration{CgroupDriver: s.cgroups.kind()}}, nil
}

// UpdateRuntimeConfig accepts the kubelet's pod CIDR; without CNI there is nothing
// to configure with it yet.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtime.UpdateRuntimeConfigRequest) (*runtime.UpdateRuntimeConfigResponse, error) {
	return &runtime.UpdateRuntimeConfigResponse{}, nil
}
