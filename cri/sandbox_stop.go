package cri

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/podns"
)

// StopPodSandbox kills the pod's containers, detaches the pod from the CNI network
// and releases its network namespace. It is idempotent, and an unknown id is not an
// error (the kubelet retries stops of sandboxes that are already gone).
func (s *Server) StopPodSandbox(ctx context.Context, req *runtime.StopPodSandboxRequest) (*runtime.StopPodSandboxResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("pod_sandbox_id", "empty")
	}
	sb, err := s.objs.sandbox(req.GetPodSandboxId())
	if status.Code(err) == codes.NotFound {
		return &runtime.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopSandbox(ctx, sb); err != nil {
		return nil, err
	}
	return &runtime.StopPodSandboxResponse{}, nil
}

func (s *Server) stopSandbox(ctx context.Context, sb *sandbox) error {
	sb.op.Lock()
	defer sb.op.Unlock()
	id := sb.id
	var errs []error
	for _, c := range s.objs.containersOf(id) {
		if err := s.stopContainer(ctx, c, 0); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return grpcError(codes.Internal, err, "stop containers of pod sandbox %s", id)
	}
	if err := s.stopInfra(sb.snapshot()); err != nil {
		return status.Errorf(codes.Internal, "stop the PID namespace holder of pod sandbox %s: %v", id, err)
	}
	// CNI DEL before the namespace goes; on failure the sandbox stays as it is for
	// the kubelet's retry.
	if err := s.detachNetwork(ctx, id); err != nil {
		return status.Errorf(codes.Internal, "tear down the network of pod sandbox %s: %v", id, err)
	}
	if err := podns.Unpin(s.paths.sandboxNS(id)); err != nil {
		return status.Errorf(codes.Internal, "release namespaces of pod sandbox %s: %v", id, err)
	}
	changed, err := s.updateSandbox(sb, func(r *sandboxRecord) bool {
		if r.State == runtime.PodSandboxState_SANDBOX_NOTREADY {
			return false
		}
		r.State = runtime.PodSandboxState_SANDBOX_NOTREADY
		return true
	})
	if err != nil {
		return status.Errorf(codes.Internal, "stop pod sandbox %s: %v", id, err)
	}
	if !changed {
		return nil
	}
	s.log.Info("pod sandbox stopped", "sandbox", id)
	s.emit(id, id, runtime.ContainerEventType_CONTAINER_STOPPED_EVENT)
	return nil
}
