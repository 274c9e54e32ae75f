package cri

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/runc"
)

// killWait bounds how long the shim waits for a container to die after SIGKILL.
const killWait = 30 * time.Second

// StopContainer sends the container's stop signal (its config's stop_signal, else
// the image's STOPSIGNAL, else SIGTERM), waits up to timeout seconds, then SIGKILLs it. Stopping a container that
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
		return status.Errorf(codes.DeadlineExceeded, "container %s exited but was not released within %s", c.id, killWait)
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
	if !s.oci.Exists(rec.ID) {
		return nil
	}
	err := s.oci.Kill(ctx, rec.ID, sig, true)
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
	if err := s.oci.Delete(ctx, c.id); err != nil {
		return status.Errorf(codes.Internal, "kill container %s: %v", c.id, err)
	}
	now := time.Now().UnixNano()
	_, err := s.updateContainer(c, func(r *containerRecord) bool {
		if r.State != runtime.ContainerState_CONTAINER_UNKNOWN {
			return false
		}
		r.State = runtime.ContainerState_CONTAINER_EXITED
		r.FinishedAt = now
		r.ExitCode = 255
		r.Reason = "Unknown"
		if r.Message == "" {
			r.Message = "the container's monitor process was lost; its exit status is unknown"
		}
		return true
	})
	if err != nil {
		return status.Errorf(codes.Internal, "kill container %s: %v", c.id, err)
	}
	return nil
}

// containerStopSignal is the signal that stops the container, by name: the one
// the container's config asks for (the pod's lifecycle.stopSignal), else the
// image's STOPSIGNAL (empty: SIGTERM), as containerd chooses.
func containerStopSignal(cfg *runtime.ContainerConfig, image string) string {
	if sig := cfg.GetStopSignal(); sig != runtime.Signal_SIGNAL_RUNTIME_DEFAULT {
		if name := criSignalName(sig); name != "" {
			return name
		}
	}
	return image
}

// criSignalName is the name of a CRI signal as images and Kubernetes write it
// ("SIGQUIT", "SIGRTMIN+3", "SIGRTMAX-2"); "" for RUNTIME_DEFAULT or a value
// this build does not know.
func criSignalName(sig runtime.Signal) string {
	name, ok := runtime.Signal_name[int32(sig)]
	if !ok || sig == runtime.Signal_SIGNAL_RUNTIME_DEFAULT {
		return ""
	}
	name = strings.TrimPrefix(name, "SIGNAL_")
	name = strings.Replace(name, "PLUS", "+", 1)
	return strings.Replace(name, "MINUS", "-", 1)
}

// criSignals maps a signal number to its CRI value, for ContainerStatus. Where
// the CRI has aliases (SIGCLD, SIGIOT, SIGPOLL) the kernel's own name wins.
var criSignals = func() map[unix.Signal]runtime.Signal {
	m := map[unix.Signal]runtime.Signal{}
	for v := range runtime.Signal_name {
		sig := runtime.Signal(v)
		name := criSignalName(sig)
		num, ok := parseSignal(name)
		if !ok {
			continue
		}
		if _, dup := m[num]; !dup || unix.SignalName(num) == name {
			m[num] = sig
		}
	}
	return m
}()

// criSignal is the CRI value of signal sig (RUNTIME_DEFAULT when it has none).
func criSignal(sig unix.Signal) runtime.Signal { return criSignals[sig] }

// The real-time signals as user space numbers them (glibc keeps the first two
// for itself), which is what "SIGRTMIN+3" means to images and Kubernetes.
const sigRTMin, sigRTMax = 34, 64

// stopSignal parses a stop signal ("SIGQUIT", "QUIT", "3", "SIGRTMIN+3");
// SIGTERM when empty or unknown.
func stopSignal(name string) unix.Signal {
	if sig, ok := parseSignal(name); ok {
		return sig
	}
	return unix.SIGTERM
}

// signalAliases are the other names of signals, which the CRI lists too.
var signalAliases = map[string]unix.Signal{"SIGCLD": unix.SIGCHLD, "SIGIOT": unix.SIGABRT, "SIGPOLL": unix.SIGIO}

// parseSignal parses a signal name or number.
func parseSignal(name string) (unix.Signal, bool) {
	if name == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(name); err == nil {
		return unix.Signal(n), n > 0 && n <= sigRTMax
	}
	name = strings.ToUpper(name)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, true
	}
	if sig, ok := signalAliases[name]; ok {
		return sig, true
	}
	for _, rt := range []struct {
		prefix string
		base   int
		sign   int
	}{{"SIGRTMIN", sigRTMin, 1}, {"SIGRTMAX", sigRTMax, -1}} {
		rest, ok := strings.CutPrefix(name, rt.prefix)
		if !ok {
			continue
		}
		off := 0
		if rest != "" {
			n, err := strconv.Atoi(rest) // "+3" or "-3"
			if err != nil || (n < 0) != (rt.sign < 0) {
				return 0, false
			}
			off = n
		}
		if n := rt.base + off; n >= sigRTMin && n <= sigRTMax {
			return unix.Signal(n), true
		}
	}
	return 0, false
}
