package cri

import (
	"context"
	"encoding/json"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Status reports the RuntimeReady and NetworkReady conditions. NetworkReady is true
// once a CNI network configuration loads; each call looks at the configuration
// directory again, so a configuration added later is picked up.
func (s *Server) Status(ctx context.Context, req *runtime.StatusRequest) (*runtime.StatusResponse, error) {
	resp := &runtime.StatusResponse{Status: &runtime.RuntimeStatus{Conditions: []*runtime.RuntimeCondition{
		{Type: runtime.RuntimeReady, Status: true},
		s.networkCondition(),
	}}}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"root":         s.opts.Root,
			"state":        s.opts.State,
			"runtime":      s.opts.Runtime,
			"monitor":      s.opts.Monitor,
			"cgroupDriver": s.opts.CgroupDriver,
			"network":      s.networkInfo(),
		})
		resp.Info = map[string]string{"config": string(info)}
	}
	return resp, nil
}

// RuntimeConfig reports the cgroup driver, so the kubelet can match it.
func (s *Server) RuntimeConfig(ctx context.Context, req *runtime.RuntimeConfigRequest) (*runtime.RuntimeConfigResponse, error) {
	return &runtime.RuntimeConfigResponse{Linux: &runtime.LinuxRuntimeConfiguration{CgroupDriver: s.cgroups.kind()}}, nil
}

// UpdateRuntimeConfig accepts the kubelet's pod CIDR. It is not used: the CNI
// network configuration's IPAM ranges decide the pods' addresses.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtime.UpdateRuntimeConfigRequest) (*runtime.UpdateRuntimeConfigResponse, error) {
	return &runtime.UpdateRuntimeConfigResponse{}, nil
}
