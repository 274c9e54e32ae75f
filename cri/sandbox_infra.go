package cri

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod whose config asks for pid namespace mode POD (the proto's default, and
// the kubelet's for shareProcessNamespace: true) shares one PID namespace
// between its containers. Unlike network, IPC and UTS namespaces it cannot be
// kept by a bind mount alone: a PID namespace ends when its init process
// exits. So such a pod gets an infra process, the nodekit-monitor binary in
// pause mode (monitor.Pause): pid 1 of a new PID namespace, in the pod's
// other namespaces, that reaps orphans and does nothing else. It runs in an
// empty read-only root of its own as uid 65535 without capabilities, in the
// pod's cgroup (cgroupfs driver). Its PID namespace is also bind-mounted next
// to the pod's other pinned namespaces, and containers join that file, so a
// recycled pid can never make a container join the wrong namespace.
//
// The sandbox record keeps its pid and start time. While the shim that
// started it runs, a goroutine waits for it; after a restart a pidfd does.
// If it dies the pod's PID namespace is gone with every process in it, and
// the sandbox becomes NOTREADY (the kubelet then makes a new one).
// StopPodSandbox kills it after the containers.

// infraCgroup is the infra process's cgroup, a leaf under the pod's parent (a
// cgroup v2 parent with controllers enabled for its children may hold no
// process itself).
const infraCgroup = "nodekit-infra"

// infraStartTimeout bounds how long the infra process may take to report.
const infraStartTimeout = 10 * time.Second

// infraKillWait bounds how long the shim waits for a killed infra process to exit.
const infraKillWait = 10 * time.Second

// sandboxInfraRoot is an empty directory the infra process mounts its empty
// root on (in its own mount namespace).
func (p paths) sandboxInfraRoot(id string) string { return filepath.Join(p.sandboxState(id), "infra") }

// sandboxPidNS is where the pod's PID namespace is pinned.
func (p paths) sandboxPidNS(id string) string { return filepath.Join(p.sandboxNS(id), "pid") }

// sharesPidNamespace reports whether a pod config asks for a PID namespace
// shared by the pod.
func sharesPidNamespace(cfg *runtime.PodSandboxConfig) bool {
	return cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() == runtime.NamespaceMode_POD
}

// startInfra starts the infra process of a pod that shares its PID namespace
// (for other pods it does nothing) and records it in rec. The process waits
// for the returned release before it runs on its own: RunPodSandbox calls it
// once rec is saved, and if the shim dies before that, the process exits.
// undo kills it and unpins its namespace.
//
// A pod with its own user namespace gets an infra process whatever its pid
// mode: the process creates the user namespace and, inside it, the pod's
// network, IPC and UTS namespaces, which are then pinned from it (a thread of
// the multi-threaded shim cannot enter a new user namespace).
func (s *Server) startInfra(rec *sandboxRecord, undo *cleanups) (release func(), err error) {
	if !sharesPidNamespace(rec.Config) && rec.UserNS == nil {
		return func() {}, nil
	}
	root := s.paths.sandboxInfraRoot(rec.ID)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, status.Errorf(codes.Internal, "pod PID namespace: %v", err)
	}
	if rec.UserNS != nil {
		// Root of the pod's user namespace mounts its empty root there.
		uid, gid := rec.UserNS.hostRoot()
		if err := os.Chown(root, uid, gid); err != nil {
			return nil, status.Errorf(codes.Internal, "pod PID namespace: %v", err)
		}
	}
	proc, err := spawnInfra(s.opts.Monitor, root, rec.Namespace, rec.UserNS)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "pod PID namespace: %v", err)
	}
	undo.add(proc.abort)
	if rec.UserNS != nil {
		if err := s.adoptUserns(rec, proc.pid, undo); err != nil {
			return nil, err
		}
	}
	pin := s.paths.sandboxPidNS(rec.ID)
	undo.add(func() error { return unpinPidNamespace(pin) })
	if err := pinPidNamespace(proc.pid, pin); err != nil {
		return nil, status.Errorf(codes.Internal, "pod PID namespace: %v", err)
	}
	rec.InfraPid, rec.InfraStart = proc.pid, proc.start
	if rec.Namespace == nil {
		rec.Namespace = map[string]string{}
	}
	rec.Namespace["pid"] = pin
	return func() {
		if err := s.placeInfraCgroup(rec, proc.pid); err != nil {
			s.log.Warn("the pod's infra process stays in the shim's cgroup", "sandbox", rec.ID, "err", err)
		}
		if err := proc.release(); err != nil {
			s.log.Warn("release the pod's infra process", "sandbox", rec.ID, "pid", proc.pid, "err", err)
		}
		id, pid := rec.ID, proc.pid
		go func() {
			proc.wait()
			s.onInfraExit(id, pid)
		}()
		s.log.Debug("pod PID namespace holder running", "sandbox", id, "pid", pid)
	}, nil
}

// onInfraExit makes the sandbox NOTREADY when its infra process died while the
// pod was ready: its PID namespace, and every container in it, is gone. What
// cannot be saved is retried in the background (Server.retry).
func (s *Server) onInfraExit(id string, pid int) {
	if !s.recordInfraExit(id, pid) {
		s.retry("infra/"+id, func() bool { return s.recordInfraExit(id, pid) })
	}
}

// recordInfraExit is onInfraExit's one try; it reports whether nothing is left to do.
func (s *Server) recordInfraExit(id string, pid int) (done bool) {
	select {
	case <-s.closed:
		return true // a server that no longer owns the records
	default:
	}
	sb, err := s.objs.sandbox(id)
	if err != nil {
		return true
	}
	// A stop or remove in progress has its own plans for the sandbox.
	sb.op.Lock()
	changed, err := s.updateSandbox(sb, func(r *sandboxRecord) bool {
		if r.State != runtime.PodSandboxState_SANDBOX_READY || r.InfraPid != pid {
			return false
		}
		r.State = runtime.PodSandboxState_SANDBOX_NOTREADY
		return true
	})
	sb.op.Unlock()
	if err != nil {
		s.log.Error("the pod's PID namespace holder exited; cannot record it, will retry", "sandbox", id, "pid", pid, "err", err)
		return false
	}
	if changed {
		s.log.Warn("the pod's PID namespace holder exited; pod sandbox not ready", "sandbox", id, "pid", pid)
		s.emit(id, id, runtime.ContainerEventType_CONTAINER_STOPPED_EVENT)
	}
	return true
}

// recoverInfra, after a restart, watches a ready sandbox's infra process if
// it still runs, and otherwise marks the sandbox NOTREADY. The sandbox must be
// listed already.
func (s *Server) recoverInfra(rec sandboxRecord) {
	if rec.InfraPid == 0 || rec.State != runtime.PodSandboxState_SANDBOX_READY {
		return
	}
	id, pid, start := rec.ID, rec.InfraPid, rec.InfraStart
	if alive(pid, start) {
		go func() {
			waitProcessGone(pid, start, -1)
			s.onInfraExit(id, pid)
		}()
		return
	}
	s.log.Warn("the pod's PID namespace holder exited while the shim was down", "sandbox", id, "pid", pid)
	s.onInfraExit(id, pid)
}

// stopInfra kills the sandbox's infra process, if it still runs, and waits
// for it; then it unpins the PID namespace and removes the infra cgroup. It
// is idempotent and also cleans up after a sandbox that was never completely
// created (rec with only an ID).
func (s *Server) stopInfra(rec sandboxRecord) error {
	var errs []error
	if rec.InfraPid != 0 {
		if _, err := signalProcess(rec.InfraPid, rec.InfraStart, unix.SIGKILL); err != nil {
			errs = append(errs, fmt.Errorf("kill the pod's infra process: %w", err))
		} else if !waitProcessGone(rec.InfraPid, rec.InfraStart, int(infraKillWait/time.Millisecond)) {
			errs = append(errs, fmt.Errorf("the pod's infra process %d did not exit %s after SIGKILL", rec.InfraPid, infraKillWait))
		}
	}
	if err := unpinPidNamespace(s.paths.sandboxPidNS(rec.ID)); err != nil {
		errs = append(errs, err)
	}
	if rec.InfraPid != 0 && rec.Cgroup != "" {
		if err := s.removeInfraCgroup(rec.Cgroup); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// containerPidNamespace resolves the PID namespace a new container joins, from
// its pid mode: POD is the pod's (the pinned namespace of its infra process,
// the host's for a host-PID pod, or a new one when the pod shares none);
// TARGET is another running container's of the same pod; CONTAINER and NODE
// need no path.
func (s *Server) containerPidNamespace(cfg *runtime.ContainerConfig, sb *sandboxRecord) (path string, hostPID bool, err error) {
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	switch nsOpts.GetPid() {
	case runtime.NamespaceMode_TARGET:
		const field = "config.linux.security_context.namespace_options.target_id"
		id := nsOpts.GetTargetId()
		if id == "" {
			return "", false, invalid(field, "empty, but pid mode is TARGET")
		}
		c, err := s.objs.container(id)
		if status.Code(err) == codes.NotFound {
			return "", false, status.Errorf(codes.NotFound, "%s: target container %q not found", field, id)
		}
		if err != nil {
			return "", false, err
		}
		target := c.snapshot()
		if target.SandboxID != sb.ID {
			return "", false, invalid(field, "container %s is in another pod sandbox", target.ID)
		}
		if target.State != runtime.ContainerState_CONTAINER_RUNNING || !alive(target.Pid, target.PidStart) {
			return "", false, status.Errorf(codes.FailedPrecondition, "%s: target container %s is not running", field, target.ID)
		}
		return fmt.Sprintf("/proc/%d/ns/pid", target.Pid), false, nil
	case runtime.NamespaceMode_POD:
		switch sb.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() {
		case runtime.NamespaceMode_NODE:
			return "", true, nil
		case runtime.NamespaceMode_POD:
			if sb.InfraPid == 0 || !alive(sb.InfraPid, sb.InfraStart) {
				return "", false, status.Errorf(codes.FailedPrecondition, "pod sandbox %s lost its PID namespace: its infra process %d exited", sb.ID, sb.InfraPid)
			}
			return sb.Namespace["pid"], false, nil
		}
	}
	return "", false, nil
}
