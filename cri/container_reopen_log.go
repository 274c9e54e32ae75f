package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// reopenLogTimeout bounds the wait for a monitor to reopen its log.
const reopenLogTimeout = 5 * time.Second

// ReopenContainerLog makes a running container's monitor reopen its log file,
// as the kubelet asks after renaming the file to rotate it: the monitor reopens
// on SIGUSR1, creating the file anew at the log path. The call returns once the
// monitor holds the file at the log path open.
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtime.ReopenContainerLogRequest) (*runtime.ReopenContainerLogResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("container_id", "empty")
	}
	c, err := s.objs.container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	rec := c.snapshot()
	if rec.State != runtime.ContainerState_CONTAINER_RUNNING {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is %s, not running", rec.ID, stateName(rec.State))
	}
	if rec.LogPath == "" {
		return &runtime.ReopenContainerLogResponse{}, nil // no log to reopen
	}
	sent, err := signalProcess(rec.MonitorPid, rec.MonitorTime, unix.SIGUSR1)
	if err != nil {
		return nil, grpcError(codes.Internal, err, "container %s: signal its monitor", rec.ID)
	}
	if !sent {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running: its monitor is gone", rec.ID)
	}
	deadline := time.Now().Add(reopenLogTimeout)
	for {
		if holdsFile(rec.MonitorPid, rec.LogPath) {
			return &runtime.ReopenContainerLogResponse{}, nil
		}
		if !alive(rec.MonitorPid, rec.MonitorTime) {
			return nil, status.Errorf(codes.FailedPrecondition, "container %s stopped before its log was reopened", rec.ID)
		}
		if time.Now().After(deadline) {
			return nil, status.Errorf(codes.Internal, "container %s: its monitor did not reopen %s within %s", rec.ID, rec.LogPath, reopenLogTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// holdsFile reports whether process pid has the file now at path open.
func holdsFile(pid int, path string) bool {
	want, err := os.Stat(path)
	if err != nil {
		return false
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if fi, err := os.Stat(filepath.Join(dir, fd.Name())); err == nil && os.SameFile(fi, want) {
			return true
		}
	}
	return false
}
