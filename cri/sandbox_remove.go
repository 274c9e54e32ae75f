package cri

import (
	"context"
	"errors"
	"os"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/podns"
)

// RemovePodSandbox stops the pod if needed, removes its containers and everything
// the pod had on the node. It is idempotent.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtime.RemovePodSandboxRequest) (*runtime.RemovePodSandboxResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("pod_sandbox_id", "empty")
	}
	sb, err := s.objs.sandbox(req.GetPodSandboxId())
	if status.Code(err) == codes.NotFound {
		return &runtime.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopSandbox(ctx, sb); err != nil {
		return nil, err
	}
	sb.op.Lock()
	defer sb.op.Unlock()
	id := sb.id
	for _, c := range s.objs.containersOf(id) {
		if err := s.removeContainer(ctx, c); err != nil {
			return nil, grpcError(codes.Internal, err, "remove containers of pod sandbox %s", id)
		}
	}
	last := sb.snapshot()
	if err := s.teardownSandbox(last); err != nil {
		return nil, status.Errorf(codes.Internal, "remove pod sandbox %s: %v", id, err)
	}
	s.objs.removeSandbox(id)
	s.objs.release(sandboxNameKey(sb.metadata), id)
	s.log.Info("pod sandbox removed", "sandbox", id)
	// The sandbox is no longer listed: the event carries its last status.
	s.emitFor(id, id, &last, runtime.ContainerEventType_CONTAINER_DELETED_EVENT)
	return &runtime.RemovePodSandboxResponse{}, nil
}

// teardownSandbox removes what a sandbox holds on the node; it is safe to repeat.
func (s *Server) teardownSandbox(rec sandboxRecord) error {
	// The network goes first, while its namespace is still there; a sandbox that
	// was never completely created may still have one.
	ctx, cancel := context.WithTimeout(context.Background(), detachTimeout)
	defer cancel()
	if err := s.detachNetwork(ctx, rec.ID); err != nil {
		return err
	}
	var errs []error
	if err := s.stopInfra(rec); err != nil {
		errs = append(errs, err)
	}
	if err := podns.Unpin(s.paths.sandboxNS(rec.ID)); err != nil {
		errs = append(errs, err)
	}
	if err := unmount(s.paths.sandboxShm(rec.ID)); err != nil {
		errs = append(errs, err)
	}
	if rec.OwnCgroup {
		if err := s.cgroups.removePod(rec.Cgroup); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// The record goes last, so a crash midway leaves a record to retry with.
	if err := os.RemoveAll(s.paths.sandboxRoot(rec.ID)); err != nil {
		return err
	}
	return os.RemoveAll(s.paths.sandboxState(rec.ID))
}
