package cri

import (
	"bytes"
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/runc"
)

// execSyncOutputCap bounds what ExecSync keeps of each of stdout and stderr.
const execSyncOutputCap = 16 << 20

// ExecSync runs a command in a running container and returns its exit code and
// output (each stream capped at 16 MiB). The timeout, when set, kills the command
// and fails the call with DeadlineExceeded.
func (s *Server) ExecSync(ctx context.Context, req *runtime.ExecSyncRequest) (*runtime.ExecSyncResponse, error) {
	switch {
	case req.GetContainerId() == "":
		return nil, invalid("container_id", "empty")
	case len(req.GetCmd()) == 0:
		return nil, invalid("cmd", "empty")
	case req.GetTimeout() < 0:
		return nil, invalid("timeout", "negative (%d)", req.GetTimeout())
	}
	c, err := s.objs.container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	rec := c.snapshot()
	if rec.State != runtime.ContainerState_CONTAINER_RUNNING {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is %s, not running", rec.ID, stateName(rec.State))
	}
	sp, err := s.specOf(rec.ID)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "container %s: read spec: %v", rec.ID, err)
	}
	proc := *sp.Process
	proc.Args = req.GetCmd()
	proc.Terminal = false
	proc.ConsoleSize = nil

	stdout := &cappedBuffer{max: execSyncOutputCap}
	stderr := &cappedBuffer{max: execSyncOutputCap}
	code, err := s.oci.Exec(ctx, rec.ID, runc.ExecOptions{
		Process: &proc,
		Stdout:  stdout,
		Stderr:  stderr,
		Timeout: time.Duration(req.GetTimeout()) * time.Second,
		Dir:     s.paths.containerState(rec.ID),
	})
	switch {
	case errors.Is(err, runc.ErrTimeout):
		return nil, status.Errorf(codes.DeadlineExceeded, "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, status.FromContextError(ctx.Err()).Err()
	case err != nil:
		return nil, status.Errorf(codes.Unknown, "%v", err)
	}
	return &runtime.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// cappedBuffer keeps the first max bytes written to it and discards the rest.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}
