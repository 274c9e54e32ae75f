package podruntime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/pleg"
)

// GarbageCollect removes what a pod no longer needs: of each container name,
// every exited instance but the newest (kept for lastState and logs), with its
// log file and termination message file; and sandboxes that are not ready, not
// the newest and hold no container. Call it for live pods (after SyncPod);
// RemovePod cleans up a pod that is gone.
func (m *Manager) GarbageCollect(ctx context.Context, rs *pleg.PodStatus) error {
	st := newPodState(rs)
	var errs []error
	removed := map[string]bool{}
	for name, list := range st.byName {
		kept := false
		for _, s := range list {
			if s.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
				continue
			}
			if !kept {
				kept = true
				continue
			}
			if err := m.removeContainer(ctx, s); err != nil {
				errs = append(errs, fmt.Errorf("remove container %s (%s): %w", name, s.GetId(), err))
				continue
			}
			removed[s.GetId()] = true
		}
	}
	if len(st.sandboxes) > 1 && rs != nil && rs.ID != "" {
		containers, err := m.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{
			LabelSelector: map[string]string{kubetypes.KubernetesPodUIDLabel: string(rs.ID)},
		})
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("list containers: %w", err))...)
		}
		used := map[string]bool{}
		for _, c := range containers {
			if !removed[c.GetId()] {
				used[c.GetPodSandboxId()] = true
			}
		}
		for _, s := range st.sandboxes[1:] {
			if s.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY || used[s.GetId()] {
				continue
			}
			if err := m.rt.RemovePodSandbox(ctx, s.GetId()); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("remove sandbox %s: %w", s.GetId(), err))
			}
		}
	}
	m.crashLoop.gc()
	m.imageBackOff.gc()
	return errors.Join(errs...)
}

// ForgetBackOffs drops the crash-loop and image-pull back-offs nothing needs
// any more (GarbageCollect does it too). An agent whose container GC runs apart
// (package imagegc) calls it after each sync.
func (m *Manager) ForgetBackOffs() {
	m.crashLoop.gc()
	m.imageBackOff.gc()
}

// removeContainer removes a container, its log file (with rotated ones) and
// its termination message file.
func (m *Manager) removeContainer(ctx context.Context, s *runtimeapi.ContainerStatus) error {
	if err := m.rt.RemoveContainer(ctx, s.GetId()); err != nil && !isNotFound(err) {
		return err
	}
	if p := s.GetLogPath(); p != "" {
		removeLogFiles(p)
	}
	m.ContainerRemoved(ctx, s)
	return nil
}

// ContainerRemoved forgets what the manager kept of a container that another
// collector (package imagegc) removed: its termination message file and the
// message read from it.
func (m *Manager) ContainerRemoved(_ context.Context, s *runtimeapi.ContainerStatus) {
	if path := s.GetAnnotations()[AnnotationTerminationMessagePath]; path != "" {
		for _, mnt := range s.GetMounts() {
			if mnt.GetContainerPath() == path && strings.HasPrefix(mnt.GetHostPath(), filepath.Join(m.rootDir, "pods")+string(filepath.Separator)) {
				_ = os.Remove(mnt.GetHostPath())
			}
		}
	}
	m.mu.Lock()
	delete(m.messages, s.GetId())
	m.mu.Unlock()
}

// removeLogFiles removes a CRI log file and its rotations (<path>.<suffix>).
func removeLogFiles(path string) {
	_ = os.Remove(path)
	rotated, _ := filepath.Glob(path + ".*")
	for _, r := range rotated {
		_ = os.Remove(r)
	}
}

// RemovePod removes everything left of a pod that was killed: its containers
// and sandboxes, its volumes (torn down by the volume manager; nothing is removed while a
// mount remains inside), its directory, its log directory and, with the
// cgroupfs driver, its cgroup. It also forgets the pod's back-off and waiting
// reasons. Removing what is already gone is not an error.
func (m *Manager) RemovePod(ctx context.Context, uid types.UID) error {
	if uid == "" {
		return errors.New("podruntime: RemovePod: empty pod UID")
	}
	ctx = m.withPod(ctx, uid)
	var errs []error
	sel := map[string]string{kubetypes.KubernetesPodUIDLabel: string(uid)}
	containers, err := m.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: sel})
	if err != nil {
		errs = append(errs, fmt.Errorf("list containers of pod %s: %w", uid, err))
	}
	for _, c := range containers {
		if err := m.rt.RemoveContainer(ctx, c.GetId()); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.GetId(), err))
		}
		m.mu.Lock()
		delete(m.messages, c.GetId())
		m.mu.Unlock()
	}
	sandboxes, err := m.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: sel})
	if err != nil {
		errs = append(errs, fmt.Errorf("list sandboxes of pod %s: %w", uid, err))
	}
	for _, s := range sandboxes {
		if err := m.rt.StopPodSandbox(ctx, s.GetId()); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", s.GetId(), err))
			continue
		}
		if err := m.rt.RemovePodSandbox(ctx, s.GetId()); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", s.GetId(), err))
		}
	}

	dir := m.podDir(uid)
	if err := m.volumes.TearDown(ctx, uid); err != nil {
		errs = append(errs, fmt.Errorf("pod directory %s: %w", dir, err))
	} else if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove pod directory: %w", err))
	}
	logDirs, _ := filepath.Glob(filepath.Join(m.podLogsDir, "*_"+string(uid)))
	for _, d := range logDirs {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("remove pod log directory: %w", err))
		}
	}
	if m.podCgroups != nil {
		if err := m.podCgroups.RemovePod(uid); err != nil {
			errs = append(errs, err)
		}
	} else if m.cgroupDriver == CgroupDriverCgroupfs {
		for _, qos := range []string{"", "burstable", "besteffort"} {
			parent := filepath.Join(m.cgroupRoot, "kubepods", qos, "pod"+string(uid))
			if err := removeCgroup(parent); err != nil {
				errs = append(errs, err)
			}
		}
	}

	m.mu.Lock()
	delete(m.reasons, uid)
	m.mu.Unlock()
	m.crashLoop.forget(string(uid))
	m.imageBackOff.forget(string(uid))
	return errors.Join(errs...)
}
