package cri

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Version of nodekit-cri, set at build time with -ldflags "-X ...cri.Version=...".
var Version = "0.1.0-dev"

// RuntimeName is what Version reports as the runtime's name.
const RuntimeName = "nodekit"

// Version reports the runtime's name and versions.
func (s *Server) Version(ctx context.Context, req *runtime.VersionRequest) (*runtime.VersionResponse, error) {
	return &runtime.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       RuntimeName,
		RuntimeVersion:    Version,
		RuntimeApiVersion: "v1",
	}, nil
}
