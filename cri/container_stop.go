package cri

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/runc"
)

// killWait bounds how long the shim waits for a container to die after SIGKILL.
const killWait = 30 * time.Second

// StopContainer sends the container's stop signal (the image's STOPSIGNAL, else
// SIGTERM), waits up to timeout seconds, then SIGKILLs it. Stopping a container that
// is not running, or that does not exist, succeeds.
func (s *Server) StopContainer(ctx context.Context, req *runtime.StopContainerRequest) (*runtime.StopContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("container_id", "empty")
	}
	if req.GetTimeout() < 0 {
		return nil, invalid("timeout", "negative (%d)", req.GetTimeout())
	}
	c, err := s.objs.container(req.GetContainerId())
	if status.Code(err) == codes.NotFound {
		return &runtime.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopContainer(ctx, c, time.Duration(req.GetTimeout())*time.Second); err != nil {
		return nil, err
	}
	return &runtime.StopContainerResponse{}, nil
}

func (s *Server) stopContainer(ctx context.Context, c *container, timeout time.Duration) error {
	c.op.Lock()
	defer c.op.Unlock()
	rec := c.snapshot()
	switch rec.State {
	case runtime.ContainerState_CONTAINER_EXITED:
		return waitReleased(ctx, c)
	case runtime.ContainerState_CONTAINER_CREATED:
		// Never started: nothing runs. It stays created; RemoveContainer cleans up.
		return nil
	case runtime.ContainerState_CONTAINER_UNKNOWN:
		// Its monitor is gone: kill whatever the runtime still has, and record it.
		if err := s.killLost(ctx, c); err != nil {
			return err
		}
		s.emit(rec.ID, rec.SandboxID, runtime.ContainerEventType_CONTAINER_STOPPED_EVENT)
		s.startRelease(c)
		return waitReleased(ctx, c)
	}
	if timeout > 0 {
		sig := stopSignal(rec.StopSignal)
		if err := s.signal(ctx, &rec, sig); err != nil {
			return status.Errorf(codes.Internal, "stop container %s: %v", rec.ID, err)
		}
		if waitExit(ctx, c, timeout) {
			return waitReleased(ctx, c)
		}
		s.log.Info("container did not stop in time; killing it", "container", rec.ID, "timeout", timeout)
	}
	if err := s.signal(ctx, &rec, unix.SIGKILL); err != nil {
		return status.Errorf(codes.Internal, "kill container %s: %v", rec.ID, err)
	}
	if !waitExit(ctx, c, killWait) {
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		return status.Errorf(codes.DeadlineExceeded, "container %s did not exit %s after SIGKILL", rec.ID, killWait)
	}
	return waitReleased(ctx, c)
}

// waitReleased waits until an exited container's monitor, runtime state and
// rootfs mount are gone (Server.release).
func waitReleased(ctx context.Context, c *container) error {
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-c.released:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-t.C:
		return status.Errorf(codes.DeadlineExceeded, "container %s exited but was not released within %s", c.rec.ID, killWait)
	}
}

// signal delivers sig to the container: to its init process when the container owns
// its PID namespace (the kernel then kills the rest with it on SIGKILL), else to all
// its processes through the runtime.
func (s *Server) signal(ctx context.Context, rec *containerRecord, sig unix.Signal) error {
	if rec.OwnPidNS || sig != unix.SIGKILL {
		sent, err := signalProcess(rec.Pid, rec.PidStart, sig)
		if err != nil || sent || sig != unix.SIGKILL {
			return err
		}
	}
	// Checking that the runtime still has the container does not make the kill safe:
	// the container may exit and its monitor delete it in between. It is only a
	// shortcut; a kill that finds the container gone or stopped has done its job.
	if !s.runc.Exists(rec.ID) {
		return nil
	}
	err := s.runc.Kill(ctx, rec.ID, sig, true)
	if errors.Is(err, runc.ErrNotExist) || errors.Is(err, runc.ErrNotRunning) {
		s.log.Debug("container exited before it was signalled", "container", rec.ID, "signal", sig)
		return nil
	}
	return err
}

// waitExit waits until the container's exit is recorded, the timeout passes or ctx
// ends; it reports whether the container exited.
func waitExit(ctx context.Context, c *container, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.exited:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// killLost handles a container whose monitor died: the runtime kills and deletes
// whatever is left and the container is recorded as exited with an unknown status.
func (s *Server) killLost(ctx context.Context, c *container) error {
	if err := s.runc.Delete(ctx, c.rec.ID); err != nil {
		return status.Errorf(codes.Internal, "kill container %s: %v", c.rec.ID, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State != runtime.ContainerState_CONTAINER_UNKNOWN {
		return nil
	}
	c.rec.State = runtime.ContainerState_CONTAINER_EXITED
	c.rec.FinishedAt = time.Now().UnixNano()
	c.rec.ExitCode = 255
	c.rec.Reason = "Unknown"
	if c.rec.Message == "" {
		c.rec.Message = "the container's monitor process was lost; its exit status is unknown"
	}
	c.markExited()
	if err := writeContainerRecord(s.paths.containerRecord(c.rec.ID), c.rec); err != nil {
		return status.Errorf(codes.Internal, "save container %s: %v", c.rec.ID, err)
	}
	return nil
}

// stopSignal parses an image STOPSIGNAL ("SIGQUIT", "QUIT", "3"); SIGTERM by default.
func stopSignal(name string) unix.Signal {
	if name == "" {
		return unix.SIGTERM
	}
	var n int
	if _, err := fmt.Sscanf(name, "%d", &n); err == nil && n > 0 && n < 65 {
		return unix.Signal(n)
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig
	}
	return unix.SIGTERM
}
