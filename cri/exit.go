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

// onExit records the exit of container id from its monitor's exit record. When
// the exit record cannot be read, or the container's record cannot be saved (a
// full disk, say), it tries again with back-off in the background until it
// succeeds, the container is removed or the server closes. Meanwhile the container
// stays RUNNING, as its record on disk says.
func (s *Server) onExit(id string) {
	if !s.recordExit(id) {
		s.retry("exit/"+id, func() bool { return s.recordExit(id) })
	}
}

// recordExit applies container id's exit record; it reports whether nothing is
// left to do (done, or nothing to do: the container or its exit record is gone).
func (s *Server) recordExit(id string) (done bool) {
	s.objs.mu.RLock()
	c := s.objs.containers[id]
	s.objs.mu.RUnlock()
	if c == nil {
		return true // removed already, or not ours
	}
	ex, err := monitor.ReadExit(s.paths.exitFile(id))
	if errors.Is(err, os.ErrNotExist) {
		return true // RemoveContainer took it
	}
	if err != nil {
		s.log.Error("read the exit record of a container; will retry", "container", id, "path", s.paths.exitFile(id), "err", err)
		return false
	}
	changed, err := s.applyExit(c, ex)
	if err != nil {
		s.log.Error("record the exit of a container; will retry", "container", id, "err", err)
		return false
	}
	if changed {
		s.emit(id, c.sandboxID, runtime.ContainerEventType_CONTAINER_STOPPED_EVENT)
	}
	s.startRelease(c)
	return true
}

// applyExit records c as exited with the status of ex, on disk and then in
// memory, which wakes its waiters. It reports whether the state changed.
func (s *Server) applyExit(c *container, ex monitor.Exit) (changed bool, err error) {
	changed, err = s.updateContainer(c, func(r *containerRecord) bool {
		if r.State == runtime.ContainerState_CONTAINER_EXITED {
			return false
		}
		r.State = runtime.ContainerState_CONTAINER_EXITED
		r.FinishedAt = ex.FinishedAt.UnixNano()
		if r.StartedAt == 0 {
			// Started by a run of the shim that died before it recorded the
			// start: the finish is the latest start time that is true.
			r.StartedAt = r.FinishedAt
		}
		r.ExitCode = ex.ExitCode
		r.Message = ex.Error
		switch {
		case ex.OOMKilled:
			r.Reason = "OOMKilled"
		case ex.ExitCode == 0:
			r.Reason = "Completed"
		default:
			r.Reason = "Error"
		}
		return true
	})
	if changed {
		s.log.Info("container exited", "container", c.id, "exitCode", ex.ExitCode, "oomKilled", ex.OOMKilled)
	}
	return changed, err
}

// retry calls try in the background with back-off (100 ms, doubling up to 10 s)
// until it reports done or the server closes. Only one retry per key runs at a
// time: a second one for the same key is dropped, the first will do its work.
func (s *Server) retry(key string, try func() (done bool)) {
	select {
	case <-s.closed:
		return
	default:
	}
	if _, busy := s.retrying.LoadOrStore(key, true); busy {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer s.retrying.Delete(key)
		delay := retryFirst
		for {
			t := time.NewTimer(delay)
			select {
			case <-s.closed:
				t.Stop()
				return
			case <-t.C:
			}
			if try() {
				return
			}
			delay = min(2*delay, retryMax)
		}
	}()
}

// The back-off of retry.
var retryFirst, retryMax = 100 * time.Millisecond, 10 * time.Second

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
	if err := s.oci.Delete(ctx, rec.ID); err != nil {
		s.log.Warn("delete the runtime state of an exited container", "container", rec.ID, "err", err)
	}
	if err := unmount(s.paths.rootfs(rec.ID)); err != nil {
		s.log.Warn("unmount the rootfs of an exited container", "container", rec.ID, "err", err)
	}
	if err := s.unmountImageVolumes(rec.ID); err != nil {
		s.log.Warn("unmount the image volumes of an exited container", "container", rec.ID, "err", err)
	}
}
