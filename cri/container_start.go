package cri

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/monitor"
	"github.com/nodekit-dev/nodekit/cri/podns"
	"github.com/nodekit-dev/nodekit/cri/runc"
)

// startErrorExitCode is the exit code a container that failed to start reports, as
// containerd does.
const startErrorExitCode = 128

// startTimeout bounds how long StartContainer waits for the runtime to start a
// container, whatever the caller's deadline.
const startTimeout = 2 * time.Minute

// StartContainer starts a created container: its monitor runs the runtime, holds
// the container's stdio and writes its log and exit record.
func (s *Server) StartContainer(ctx context.Context, req *runtime.StartContainerRequest) (*runtime.StartContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("container_id", "empty")
	}
	c, err := s.objs.container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	c.op.Lock()
	defer c.op.Unlock()
	rec := c.snapshot()
	if rec.State != runtime.ContainerState_CONTAINER_CREATED {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is %s, not created", rec.ID, stateName(rec.State))
	}
	sb, err := s.objs.sandbox(rec.SandboxID)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s: its pod sandbox is gone", rec.ID)
	}
	sbRec := sb.snapshot()
	if sbRec.State != runtime.PodSandboxState_SANDBOX_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s: pod sandbox %s is not ready", rec.ID, rec.SandboxID)
	}
	if err := s.ensureImageVolumes(&rec, sbRec.Namespace[string(podns.User)]); err != nil {
		s.failStart(c, err)
		s.emit(rec.ID, rec.SandboxID, runtime.ContainerEventType_CONTAINER_STOPPED_EVENT)
		s.startRelease(c)
		return nil, status.Errorf(codes.FailedPrecondition, "start container %s: image volume: %v", rec.ID, err)
	}
	if rec.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(rec.LogPath), 0o755); err != nil {
			return nil, status.Errorf(codes.Internal, "container %s: log directory: %v", rec.ID, err)
		}
	}
	cfg := monitor.Config{
		ID:           rec.ID,
		Bundle:       s.paths.bundle(rec.ID),
		LogPath:      rec.LogPath,
		ExitFile:     s.paths.exitFile(rec.ID),
		PidFile:      filepath.Join(s.paths.containerState(rec.ID), "pid"),
		Terminal:     rec.Config.GetTty(),
		DeleteOnExit: true,
		// Attach (container_attach.go).
		Stdin:        rec.Config.GetStdin(),
		StdinOnce:    rec.Config.GetStdinOnce(),
		AttachSocket: s.paths.attachSocket(rec.ID),
	}
	// A start, once begun, is finished even if the caller goes away (a kubelet
	// that dies mid-call): cutting it short would record a StartError for a
	// container that was about to run, and the kubelet's retry would count it
	// as a restart. The runtime still gets a bound.
	startCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	pid, monitorPid, err := s.oci.Start(startCtx, s.paths.containerState(rec.ID), cfg)
	if err != nil {
		s.failStart(c, err)
		s.emit(rec.ID, rec.SandboxID, runtime.ContainerEventType_CONTAINER_STOPPED_EVENT)
		s.startRelease(c)
		// The runtime's error names the container already.
		return nil, status.Error(codes.Unknown, err.Error())
	}
	if err := s.recordStart(c, pid, monitorPid); err != nil {
		return nil, err
	}
	s.emit(rec.ID, rec.SandboxID, runtime.ContainerEventType_CONTAINER_STARTED_EVENT)
	return &runtime.StartContainerResponse{}, nil
}

// recordStart saves what a successful start learnt: pids and start time. A start
// that cannot be saved is undone: the container is killed (its exit is then
// recorded as any other), so that nothing runs that a restart would not know of.
func (s *Server) recordStart(c *container, pid, monitorPid int) error {
	now := time.Now().UnixNano()
	pidStart, _ := procStartTime(pid)
	monitorStart, _ := procStartTime(monitorPid)
	_, err := s.updateContainer(c, func(r *containerRecord) bool {
		r.StartedAt = now
		if r.FinishedAt != 0 && r.FinishedAt < r.StartedAt {
			// It already ran to its end: keep started <= finished.
			r.StartedAt = r.FinishedAt
		}
		r.Pid, r.PidStart = pid, pidStart
		r.MonitorPid, r.MonitorTime = monitorPid, monitorStart
		if r.State == runtime.ContainerState_CONTAINER_CREATED {
			// The exit watcher may already have seen a fast container exit.
			r.State = runtime.ContainerState_CONTAINER_RUNNING
		}
		return true
	})
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), killWait)
		defer cancel()
		if kerr := s.oci.Kill(ctx, c.id, unix.SIGKILL, true); kerr != nil && !errors.Is(kerr, runc.ErrNotExist) && !errors.Is(kerr, runc.ErrNotRunning) {
			s.log.Error("kill a container whose start cannot be saved", "container", c.id, "err", kerr)
		}
		return status.Errorf(codes.Internal, "start container %s: %v (the container was killed)", c.id, err)
	}
	s.log.Info("container started", "container", c.id, "pid", pid)
	return nil
}

// failStart records a start failure: the container is exited with StartError, as in
// containerd, so the kubelet reports it and retries with a new container. If that
// cannot be saved the container stays CREATED, as on disk.
func (s *Server) failStart(c *container, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.oci.Delete(ctx, c.id); err != nil {
		s.log.Warn("delete runtime state after failed start", "container", c.id, "err", err)
	}
	now := time.Now().UnixNano()
	_, err := s.updateContainer(c, func(r *containerRecord) bool {
		r.State = runtime.ContainerState_CONTAINER_EXITED
		r.StartedAt, r.FinishedAt = now, now
		r.ExitCode = startErrorExitCode
		r.Reason = "StartError"
		r.Message = cause.Error()
		return true
	})
	if err != nil {
		s.log.Error("record a failed start", "container", c.id, "cause", cause, "err", err)
	}
}

func stateName(st runtime.ContainerState) string {
	switch st {
	case runtime.ContainerState_CONTAINER_CREATED:
		return "created"
	case runtime.ContainerState_CONTAINER_RUNNING:
		return "running"
	case runtime.ContainerState_CONTAINER_EXITED:
		return "exited"
	}
	return "unknown"
}
