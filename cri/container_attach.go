package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/nodekit-dev/nodekit/cri/monitor"
)

// Attach prepares a streaming attach to a running container's stdio and returns
// the URL the client connects to (see streaming.go).
func (s *Server) Attach(ctx context.Context, req *runtime.AttachRequest) (*runtime.AttachResponse, error) {
	switch {
	case req.GetContainerId() == "":
		return nil, invalid("container_id", "empty")
	case req.GetTty() && req.GetStderr():
		return nil, invalid("stderr", "cannot be set with tty (a terminal has one output)")
	case !req.GetStdin() && !req.GetStdout() && !req.GetStderr():
		return nil, invalid("stdin, stdout, stderr", "none is set")
	}
	rec, err := s.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	req = proto.Clone(req).(*runtime.AttachRequest)
	req.ContainerId = rec.ID
	resp, err := s.stream.lib.GetAttach(req)
	return resp, grpcError(codes.Internal, err, "attach to container %s", rec.ID)
}

// attachSocket is where the container's monitor listens for attach clients
// (monitor.Config.AttachSocket): derived from the id, so a restarted shim finds it.
func (p paths) attachSocket(id string) string {
	return filepath.Join(p.containerState(id), "attach.sock")
}

// attachSession connects a streaming client to the container's stdio through its
// monitor, until the container exits, the client's input ends (for containers
// with stdin_once and no terminal: until the container's output ends, the
// container's stdin being closed), or the client goes away. Input is only passed
// on to containers created with stdin.
func (s *Server) attachSession(ctx context.Context, id string, in io.Reader, out, errOut io.Writer, resize <-chan remotecommand.TerminalSize) error {
	rec, err := s.runningContainer(id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := rec.Config
	aio := monitor.AttachIO{
		Stdout:    out,
		Stderr:    errOut,
		StdinOnce: cfg.GetStdinOnce() && !cfg.GetTty(),
	}
	if in != nil && cfg.GetStdin() {
		aio.Stdin = in
	}
	if resize != nil {
		sizes := make(chan monitor.TerminalSize)
		aio.Resize = sizes
		go func() {
			defer close(sizes)
			for {
				select {
				case size, ok := <-resize:
					if !ok {
						return
					}
					select {
					case sizes <- monitor.TerminalSize{Width: size.Width, Height: size.Height}:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	err = monitor.Attach(ctx, s.paths.attachSocket(rec.ID), aio)
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return nil // the container exited, or the client detached or went away
	case errors.Is(err, monitor.ErrNotAttachable):
		if _, rerr := s.runningContainer(rec.ID); rerr != nil {
			return rerr // it exited meanwhile
		}
		return fmt.Errorf("container %s offers no attach socket (started by an older monitor?): %w", rec.ID, err)
	}
	return err
}
