package cri

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Status reports the RuntimeReady and NetworkReady conditions. NetworkReady is true
// once a CNI network configuration loads; each call looks at the configuration
// directory again, so a configuration added later is picked up.
func (s *Server) Status(ctx context.Context, req *runtime.StatusRequest) (*runtime.StatusResponse, error) {
	resp := &runtime.StatusResponse{
		Status: &runtime.RuntimeStatus{Conditions: []*runtime.RuntimeCondition{
			{Type: runtime.RuntimeReady, Status: true},
			s.networkCondition(),
		}},
		RuntimeHandlers: s.runtimeHandlers(),
		Features:        &runtime.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"root":         s.opts.Root,
			"state":        s.opts.State,
			"stateDir":     s.opts.State,
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

// runtimeHandlers lists the handlers RunPodSandbox accepts ("" is the default,
// which is runc) with what each supports, as `runc features` said at start.
func (s *Server) runtimeHandlers() []*runtime.RuntimeHandler {
	var out []*runtime.RuntimeHandler
	for _, name := range []string{"", "runc"} {
		out = append(out, &runtime.RuntimeHandler{Name: name, Features: &runtime.RuntimeHandlerFeatures{
			RecursiveReadOnlyMounts: s.features.rro,
			UserNamespaces:          s.features.userns,
		}})
	}
	return out
}

// runtimeFeatures is what the OCI runtime offers, asked once at start.
type runtimeFeatures struct{ rro, userns bool }

func (s *Server) detectFeatures() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := s.oci.Features(ctx)
	if err != nil {
		s.log.Warn("cannot ask the OCI runtime for its features; recursive read-only mounts and user namespaces are off", "err", err)
		return
	}
	s.features = runtimeFeatures{rro: f.RecursiveReadOnly(), userns: f.UserNamespaces()}
	if s.features.userns {
		// A pod's user namespace has its own root, which must be able to reach
		// the pod's directories under the state directory.
		if dir := untraversable(s.opts.State); dir != "" {
			s.log.Warn("user namespaces are off: a directory above the state directory is not searchable by others (mode o+x)", "dir", dir)
			s.features.userns = false
		}
	}
}

// untraversable returns the first directory from / down to dir that others may
// not search, or "".
func untraversable(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			return d
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}
