package cri

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/monitor"
)

// recover rebuilds the in-memory view from the records a previous run left, and
// reconciles each container with what is true now: a monitor's exit record wins; a
// container whose monitor is gone without one is reported unknown. Half-created
// objects (no record) are torn down, as are leftovers no record owns.
func (s *Server) recover(ctx context.Context) error {
	sandboxIDs, err := listDir(filepath.Join(s.paths.state, "sandboxes"))
	if err != nil {
		return err
	}
	for _, id := range sandboxIDs {
		rec, err := readSandboxRecord(s.paths.sandboxRecord(id))
		if err != nil {
			s.log.Warn("removing a pod sandbox that was never completely created", "sandbox", id, "err", err)
			if err := s.teardownSandbox(sandboxRecord{ID: id}); err != nil {
				s.log.Error("remove partial sandbox", "sandbox", id, "err", err)
			}
			continue
		}
		s.objs.addSandbox(newSandbox(rec))
		s.recoverInfra(*rec)
		if err := s.objs.reserve(sandboxNameKey(rec.Config.GetMetadata()), id, "pod sandbox"); err != nil {
			s.log.Warn("duplicate sandbox name in records", "sandbox", id, "err", err)
		}
	}

	containerIDs, err := listDir(filepath.Join(s.paths.state, "containers"))
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, id := range containerIDs {
		rec, err := readContainerRecord(s.paths.containerRecord(id))
		if err != nil {
			s.log.Warn("removing a container that was never completely created", "container", id, "err", err)
			if err := s.oci.Delete(ctx, id); err != nil {
				s.log.Error("delete partial container", "container", id, "err", err)
			}
			if err := s.teardownContainer(id); err != nil {
				s.log.Error("remove partial container", "container", id, "err", err)
			}
			continue
		}
		known[id] = true
		c := newContainer(rec)
		s.objs.addContainer(c)
		if sb, err := s.objs.sandbox(rec.SandboxID); err == nil {
			key := containerNameKey(rec.Config.GetMetadata(), sb.metadata)
			if err := s.objs.reserve(key, id, "container"); err != nil {
				s.log.Warn("duplicate container name in records", "container", id, "err", err)
			}
		}
		s.reconcile(ctx, c)
		if c.snapshot().State == runtime.ContainerState_CONTAINER_EXITED {
			s.startRelease(c) // idempotent: unmounts what a previous run left mounted
		}
	}
	s.emptyTrash()

	// Leftovers that no record owns: writable layers, exit records, runtime state.
	for _, dir := range []string{filepath.Join(s.paths.root, "containers"), filepath.Join(s.paths.root, "sandboxes")} {
		ids, err := listDir(dir)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := os.Stat(filepath.Join(s.paths.state, filepath.Base(dir), id)); errors.Is(err, os.ErrNotExist) {
				if err := os.RemoveAll(filepath.Join(dir, id)); err != nil {
					s.log.Error("remove leftover", "dir", filepath.Join(dir, id), "err", err)
				}
			}
		}
	}
	exits, err := listDir(s.paths.exitsDir())
	if err != nil {
		return err
	}
	for _, name := range exits {
		if id, ok := exitRecordID(name); ok && !known[id] {
			os.Remove(filepath.Join(s.paths.exitsDir(), name))
		}
	}
	runcIDs, err := s.oci.IDs()
	if err != nil {
		return err
	}
	for _, id := range runcIDs {
		if !known[id] {
			if err := s.oci.Delete(ctx, id); err != nil {
				s.log.Error("delete leftover runtime container", "container", id, "err", err)
			}
		}
	}
	s.log.Info("state recovered", "sandboxes", len(s.objs.listSandboxes()), "containers", len(known))
	return nil
}

// reconcile brings a recovered container's state up to date. What it learns is
// saved before it is published; what it cannot save (a full disk) is retried in
// the background for an exit, and found again by the next start otherwise.
func (s *Server) reconcile(ctx context.Context, c *container) {
	rec := c.snapshot()
	if rec.State == runtime.ContainerState_CONTAINER_EXITED {
		return
	}
	if s.reconcileExit(c) {
		return
	}
	switch rec.State {
	case runtime.ContainerState_CONTAINER_RUNNING:
		if alive(rec.MonitorPid, rec.MonitorTime) {
			return // still supervised; its exit record will come
		}
		// A record saved without its monitor (by an older version adopting a
		// container whose start was cut short) may still have one.
		if mpid, mstart, ok := s.oci.Monitor(s.paths.containerState(rec.ID)); ok {
			_, err := s.updateContainer(c, func(r *containerRecord) bool {
				r.MonitorPid, r.MonitorTime = mpid, mstart
				return true
			})
			if err != nil {
				s.log.Error("record the monitor of a running container", "container", rec.ID, "err", err)
			}
			return
		}
	case runtime.ContainerState_CONTAINER_CREATED:
		if s.recoverStart(ctx, c) {
			return
		}
	default:
		return
	}
	// Look again: the exit record may have landed meanwhile.
	if s.reconcileExit(c) {
		return
	}
	_, err := s.updateContainer(c, func(r *containerRecord) bool {
		r.State = runtime.ContainerState_CONTAINER_UNKNOWN
		r.Message = "the container's monitor process was lost; its exit status is unknown"
		return true
	})
	if err != nil {
		s.log.Error("record a container that lost its monitor", "container", rec.ID, "err", err)
		return
	}
	s.log.Warn("container lost its monitor", "container", rec.ID)
}

// recoverStart settles a CREATED container whose StartContainer the previous run
// may have died in. Its monitor, if one was launched, lives on and reports to
// nobody: wait until it has started the container (adopt it: RUNNING, with the
// monitor) or has ended (its exit record, or a failed start: the runtime's
// half-created container is deleted so that StartContainer can run again). It
// reports whether the container's state is settled; false leaves it to the
// lost-monitor path (UNKNOWN).
func (s *Server) recoverStart(ctx context.Context, c *container) bool {
	dir := s.paths.containerState(c.id)
	ctx, cancel := context.WithTimeout(ctx, startRecoveryWait)
	defer cancel()
	for {
		mpid, mstart, live := s.oci.Monitor(dir)
		st, err := s.oci.State(ctx, c.id)
		switch {
		case err == nil && st.Status == "running" && live:
			_, err := s.updateContainer(c, func(r *containerRecord) bool {
				r.State = runtime.ContainerState_CONTAINER_RUNNING
				r.Pid, r.StartedAt = st.Pid, st.Created.UnixNano()
				r.PidStart, _ = procStartTime(st.Pid)
				r.MonitorPid, r.MonitorTime = mpid, mstart
				return true
			})
			if err != nil {
				s.log.Error("record a container started by the previous run", "container", c.id, "err", err)
			}
			s.log.Info("adopted a container the previous run started", "container", c.id, "pid", st.Pid, "monitor", mpid)
			return true
		case !live:
			if s.reconcileExit(c) {
				return true // it started and already ended
			}
			if err == nil && st.Status == "running" {
				return false // running without a monitor: its exit cannot be known
			}
			// Never started, or a start that failed or was cut short: nothing
			// runs; what the runtime half-created goes, so a start can retry.
			if err := s.oci.Delete(ctx, c.id); err != nil {
				s.log.Error("delete a container the previous run half-created", "container", c.id, "err", err)
			}
			return true
		}
		// The monitor is still starting it.
		select {
		case <-ctx.Done():
			s.log.Warn("a monitor launched by the previous run has not started its container", "container", c.id, "monitor", mpid)
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// startRecoveryWait bounds how long recovery waits for a monitor launched by the
// previous run to start its container.
const startRecoveryWait = time.Minute

// reconcileExit applies the container's exit record if there is one, and
// reports whether there was. An exit it cannot save is retried in the background.
func (s *Server) reconcileExit(c *container) bool {
	ex, err := monitor.ReadExit(s.paths.exitFile(c.id))
	if err != nil {
		return false
	}
	if _, err := s.applyExit(c, ex); err != nil {
		s.log.Error("record the exit of a container; will retry", "container", c.id, "err", err)
		s.retry("exit/"+c.id, func() bool { return s.recordExit(c.id) })
	}
	return true
}

// listDir returns the names in dir; a missing dir is empty.
func listDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}
