package cri

import (
	"errors"
	"os"
	"strings"

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
