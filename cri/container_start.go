package cri

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/monitor"
	"github.com/nodekit-dev/nodekit/cri/podns"
)

// startErrorExitCode is the exit code a container that failed to start reports, as
// containerd does.
const startErrorExitCode = 128

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
		Runtime:      s.runc.Binary(),
		RuntimeRoot:  s.runc.Root(),
		RuntimeArgs:  s.runc.GlobalArgs()[2:],
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
	proc, err := monitor.Start(ctx, s.opts.Monitor, s.paths.containerState(rec.ID), cfg)
	if err != nil {
		s.failStart(c, err)
		s.emit(rec.ID, rec.SandboxID, runtime.ContainerEventType_CONTAINER_STOPPED_EVENT)
		s.startRelease(c)
		return nil, status.Errorf(codes.Unknown, "start container %s: %v", rec.ID, err)
	}
	// Reap our child when it exits (after a shim restart init does).
	if err := reapWhenDone(proc.MonitorPid, nil); err != nil {
		go proc.Monitor.Wait()
	} else {
		proc.Monitor.Release()
	}

	if err := s.recordStart(c, proc); err != nil {
		return nil, err
	}
	s.emit(rec.ID, rec.SandboxID, runtime.ContainerEventType_CONTAINER_STARTED_EVENT)
	return &runtime.StartContainerResponse{}, nil
}

// recordStart saves what a successful start learnt: pids and start time.
func (s *Server) recordStart(c *container, proc *monitor.Process) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.rec
	c.rec.StartedAt = time.Now().UnixNano()
	if c.rec.FinishedAt != 0 && c.rec.FinishedAt < c.rec.StartedAt {
		// It already ran to its end: keep started <= finished.
		c.rec.StartedAt = c.rec.FinishedAt
	}
	c.rec.Pid = proc.ContainerPid
	c.rec.PidStart, _ = procStartTime(proc.ContainerPid)
	c.rec.MonitorPid = proc.MonitorPid
	c.rec.MonitorTime, _ = procStartTime(proc.MonitorPid)
	if c.rec.State == runtime.ContainerState_CONTAINER_CREATED {
		// The exit watcher may already have seen a fast container exit.
		c.rec.State = runtime.ContainerState_CONTAINER_RUNNING
	}
	if err := writeContainerRecord(s.paths.containerRecord(rec.ID), c.rec); err != nil {
		return status.Errorf(codes.Internal, "save container %s: %v", rec.ID, err)
	}
	s.log.Info("container started", "container", rec.ID, "pid", proc.ContainerPid)
	return nil
}

// failStart records a start failure: the container is exited with StartError, as in
// containerd, so the kubelet reports it and retries with a new container.
func (s *Server) failStart(c *container, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.runc.Delete(ctx, c.rec.ID); err != nil {
		s.log.Warn("delete runtime state after failed start", "container", c.rec.ID, "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().UnixNano()
	c.rec.State = runtime.ContainerState_CONTAINER_EXITED
	c.rec.StartedAt, c.rec.FinishedAt = now, now
	c.rec.ExitCode = startErrorExitCode
	c.rec.Reason = "StartError"
	c.rec.Message = cause.Error()
	if err := writeContainerRecord(s.paths.containerRecord(c.rec.ID), c.rec); err != nil {
		s.log.Error("save container after failed start", "container", c.rec.ID, "err", err)
	}
	c.markExited()
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
