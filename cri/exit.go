package cri

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/monitor"
)

// onExit records the exit of container id from its monitor's exit record.
func (s *Server) onExit(id string) {
	s.objs.mu.RLock()
	c := s.objs.containers[id]
	s.objs.mu.RUnlock()
	if c == nil {
		return // removed already, or not ours
	}
	ex, err := monitor.ReadExit(s.paths.exitFile(id))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Error("read exit record", "container", id, "err", err)
		}
		return
	}
	if s.applyExit(c, ex) {
		s.emit(id, c.rec.SandboxID, runtime.ContainerEventType_CONTAINER_STOPPED_EVENT)
	}
	s.startRelease(c)
}

// applyExit moves c to exited with the status of ex and wakes its waiters. It
// reports whether the state changed.
func (s *Server) applyExit(c *container, ex monitor.Exit) (changed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.markExited()
	if c.rec.State != runtime.ContainerState_CONTAINER_EXITED {
		changed = true
		c.rec.State = runtime.ContainerState_CONTAINER_EXITED
		c.rec.FinishedAt = ex.FinishedAt.UnixNano()
		c.rec.ExitCode = ex.ExitCode
		c.rec.Message = ex.Error
		switch {
		case ex.OOMKilled:
			c.rec.Reason = "OOMKilled"
		case ex.ExitCode == 0:
			c.rec.Reason = "Completed"
		default:
			c.rec.Reason = "Error"
		}
		if err := writeContainerRecord(s.paths.containerRecord(c.rec.ID), c.rec); err != nil {
			s.log.Error("save container exit", "container", c.rec.ID, "err", err)
		}
		s.log.Info("container exited", "container", c.rec.ID, "exitCode", ex.ExitCode, "reason", c.rec.Reason)
	}
	return changed
}

// exitRecordID returns the container id of an exit record file name; temp files of
// an atomic write (dot files) are not records.
func exitRecordID(name string) (string, bool) {
	if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
		return "", false
	}
	return strings.TrimSuffix(name, ".json"), true
}

// startRelease gives back, in the background, what the exited container c still
// holds on the node; c.released closes when that is done. It runs once per
// container.
func (s *Server) startRelease(c *container) {
	c.releaseOnce.Do(func() {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			defer close(c.released)
			s.release(c)
		}()
	})
}

// release waits for the monitor of an exited container to finish (it deletes the
// runtime's state after writing the exit record), makes sure the runtime's state
// is gone, and unmounts the rootfs and the image volumes. The writable layer
// stays until RemoveContainer. As containerd does, this is part of stopping:
// StopContainer returns once it is done.
func (s *Server) release(c *container) {
	rec := c.snapshot()
	if rec.MonitorPid > 0 && !waitProcessGone(rec.MonitorPid, rec.MonitorTime, 10_000) {
		s.log.Warn("monitor still running after the container exited", "container", rec.ID, "monitor", rec.MonitorPid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.runc.Delete(ctx, rec.ID); err != nil {
		s.log.Warn("delete the runtime state of an exited container", "container", rec.ID, "err", err)
	}
	if err := unmount(s.paths.rootfs(rec.ID)); err != nil {
		s.log.Warn("unmount the rootfs of an exited container", "container", rec.ID, "err", err)
	}
	if err := s.unmountImageVolumes(rec.ID); err != nil {
		s.log.Warn("unmount the image volumes of an exited container", "container", rec.ID, "err", err)
	}
}
