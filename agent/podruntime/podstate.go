package podruntime

import (
	"slices"
	"strconv"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/pleg"
)

// podState is the runtime status of a pod arranged for decisions: container
// statuses by name, newest first.
type podState struct {
	rs        *pleg.PodStatus
	sandboxes []*runtimeapi.PodSandboxStatus           // newest first
	all       []*runtimeapi.ContainerStatus            // newest first
	byName    map[string][]*runtimeapi.ContainerStatus // newest first
}

func newPodState(rs *pleg.PodStatus) *podState {
	st := &podState{rs: rs, byName: map[string][]*runtimeapi.ContainerStatus{}}
	if rs == nil {
		st.rs = &pleg.PodStatus{}
		return st
	}
	st.sandboxes = slices.Clone(rs.SandboxStatuses)
	slices.SortStableFunc(st.sandboxes, func(a, b *runtimeapi.PodSandboxStatus) int {
		if c := -cmpInt64(a.GetCreatedAt(), b.GetCreatedAt()); c != 0 {
			return c
		}
		return -cmpInt64(int64(a.GetMetadata().GetAttempt()), int64(b.GetMetadata().GetAttempt()))
	})
	for _, c := range rs.ContainerStatuses {
		if c != nil {
			st.all = append(st.all, c)
		}
	}
	slices.SortStableFunc(st.all, func(a, b *runtimeapi.ContainerStatus) int {
		if c := -cmpInt64(a.GetCreatedAt(), b.GetCreatedAt()); c != 0 {
			return c
		}
		return -cmpInt64(int64(a.GetMetadata().GetAttempt()), int64(b.GetMetadata().GetAttempt()))
	})
	for _, c := range st.all {
		n := containerName(c)
		st.byName[n] = append(st.byName[n], c)
	}
	return st
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// latest returns the newest status of the container called name, or nil.
func (st *podState) latest(name string) *runtimeapi.ContainerStatus {
	if l := st.byName[name]; len(l) > 0 {
		return l[0]
	}
	return nil
}

// latestExited returns the newest exited status of the container called name.
func (st *podState) latestExited(name string) *runtimeapi.ContainerStatus {
	for _, c := range st.byName[name] {
		if c.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			return c
		}
	}
	return nil
}

// containerName is the pod-spec name of a CRI container.
func containerName(c *runtimeapi.ContainerStatus) string {
	if n := c.GetMetadata().GetName(); n != "" {
		return n
	}
	return c.GetLabels()[kubetypes.KubernetesContainerNameLabel]
}

// restartCount reads the restart count annotation of a container (0 if absent).
func restartCount(c *runtimeapi.ContainerStatus) int {
	n, err := strconv.Atoi(c.GetAnnotations()[AnnotationRestartCount])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func finishedAt(c *runtimeapi.ContainerStatus) time.Time { return time.Unix(0, c.GetFinishedAt()) }

func isRunning(c *runtimeapi.ContainerStatus) bool {
	return c != nil && c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING
}

func isExited(c *runtimeapi.ContainerStatus) bool {
	return c != nil && c.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED
}

// initFailed says whether an init container's last run failed (the kubelet's
// isInitContainerFailed).
func initFailed(c *runtimeapi.ContainerStatus) bool {
	switch {
	case c.GetReason() == "OOMKilled":
		return true
	case c.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED && c.GetExitCode() != 0:
		return true
	case c.GetState() == runtimeapi.ContainerState_CONTAINER_UNKNOWN:
		return true
	}
	return false
}
