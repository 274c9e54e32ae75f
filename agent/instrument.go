package agent

import (
	"context"
	"fmt"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/agent/timeline"
)

// instrumentedRuntime counts and times the runtime calls the agent makes
// (kubelet_runtime_operations_*): pod lifecycle, list, status and stats calls;
// the rest (version, the event stream) passes through. A call whose context
// carries a pod (timeline.WithPod: podruntime's syncs and kills) is also
// recorded in that pod's timeline, with its latency and error: every call
// that changes something, and the reads that fail (a read that succeeds,
// made at every sync, would only push the pod's history out).
type instrumentedRuntime struct {
	internalapi.RuntimeService
	m *metrics
}

func (a *Agent) instrumented(rt internalapi.RuntimeService) internalapi.RuntimeService {
	return &instrumentedRuntime{RuntimeService: rt, m: a.metrics}
}

// criCall names a CRI method for metrics (op) and for timelines (name).
type criCall struct {
	op, name string
	changes  bool // it changes something: recorded in timelines even when it succeeds
}

var (
	callRunPodSandbox       = criCall{"run_podsandbox", "RunPodSandbox", true}
	callStopPodSandbox      = criCall{"stop_podsandbox", "StopPodSandbox", true}
	callRemovePodSandbox    = criCall{"remove_podsandbox", "RemovePodSandbox", true}
	callCreateContainer     = criCall{"create_container", "CreateContainer", true}
	callStartContainer      = criCall{"start_container", "StartContainer", true}
	callStopContainer       = criCall{"stop_container", "StopContainer", true}
	callRemoveContainer     = criCall{"remove_container", "RemoveContainer", true}
	callExecSync            = criCall{"exec_sync", "ExecSync", true}
	callListPodSandbox      = criCall{"list_podsandbox", "ListPodSandbox", false}
	callListContainers      = criCall{"list_containers", "ListContainers", false}
	callPodSandboxStatus    = criCall{"podsandbox_status", "PodSandboxStatus", false}
	callContainerStatus     = criCall{"container_status", "ContainerStatus", false}
	callListPodSandboxStats = criCall{"list_podsandbox_stats", "ListPodSandboxStats", false}
	callListContainerStats  = criCall{"list_container_stats", "ListContainerStats", false}
)

// observe accounts for a call that started at start; detail says what it was
// about (an ID, a timeout), for the timeline. (Making it costs a few
// nanoseconds; the call, a gRPC round trip, tens of microseconds at least.)
func (r *instrumentedRuntime) observe(ctx context.Context, c criCall, detail string, start time.Time, err error) {
	d := time.Since(start)
	r.m.observeRuntime(c.op, d, err)
	if !c.changes && err == nil {
		return
	}
	l := timeline.FromContext(ctx)
	if !l.Enabled() {
		return
	}
	e := timeline.Entry{Kind: timeline.CRI, What: c.name, Message: detail, Took: d}
	if err != nil {
		e.Error = err.Error()
	}
	l.Record(e)
}

// shortID is a CRI ID as logs show it.
func shortID(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}

func (r *instrumentedRuntime) RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (id string, err error) {
	defer func(start time.Time) {
		r.observe(ctx, callRunPodSandbox, fmt.Sprintf("attempt %d, sandbox %s", cfg.GetMetadata().GetAttempt(), shortID(id)), start, err)
	}(time.Now())
	return r.RuntimeService.RunPodSandbox(ctx, cfg, handler)
}

func (r *instrumentedRuntime) StopPodSandbox(ctx context.Context, id string) (err error) {
	defer func(start time.Time) { r.observe(ctx, callStopPodSandbox, "sandbox "+shortID(id), start, err) }(time.Now())
	return r.RuntimeService.StopPodSandbox(ctx, id)
}

func (r *instrumentedRuntime) RemovePodSandbox(ctx context.Context, id string) (err error) {
	defer func(start time.Time) { r.observe(ctx, callRemovePodSandbox, "sandbox "+shortID(id), start, err) }(time.Now())
	return r.RuntimeService.RemovePodSandbox(ctx, id)
}

func (r *instrumentedRuntime) CreateContainer(ctx context.Context, sandbox string, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig) (id string, err error) {
	defer func(start time.Time) {
		r.observe(ctx, callCreateContainer, fmt.Sprintf("attempt %d, container %s", cfg.GetMetadata().GetAttempt(), shortID(id)), start, err)
	}(time.Now())
	return r.RuntimeService.CreateContainer(ctx, sandbox, cfg, sbCfg)
}

func (r *instrumentedRuntime) StartContainer(ctx context.Context, id string) (err error) {
	defer func(start time.Time) { r.observe(ctx, callStartContainer, "container "+shortID(id), start, err) }(time.Now())
	return r.RuntimeService.StartContainer(ctx, id)
}

func (r *instrumentedRuntime) StopContainer(ctx context.Context, id string, timeout int64) (err error) {
	defer func(start time.Time) {
		r.observe(ctx, callStopContainer, fmt.Sprintf("container %s, timeout %ds", shortID(id), timeout), start, err)
	}(time.Now())
	return r.RuntimeService.StopContainer(ctx, id, timeout)
}

func (r *instrumentedRuntime) RemoveContainer(ctx context.Context, id string) (err error) {
	defer func(start time.Time) { r.observe(ctx, callRemoveContainer, "container "+shortID(id), start, err) }(time.Now())
	return r.RuntimeService.RemoveContainer(ctx, id)
}

func (r *instrumentedRuntime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error) {
	defer func(start time.Time) {
		r.observe(ctx, callExecSync, fmt.Sprintf("container %s: %q", shortID(id), cmd), start, err)
	}(time.Now())
	return r.RuntimeService.ExecSync(ctx, id, cmd, timeout)
}

func (r *instrumentedRuntime) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) (out []*runtimeapi.PodSandbox, err error) {
	defer func(start time.Time) { r.observe(ctx, callListPodSandbox, "", start, err) }(time.Now())
	return r.RuntimeService.ListPodSandbox(ctx, filter)
}

func (r *instrumentedRuntime) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) (out []*runtimeapi.Container, err error) {
	defer func(start time.Time) { r.observe(ctx, callListContainers, "", start, err) }(time.Now())
	return r.RuntimeService.ListContainers(ctx, filter)
}

func (r *instrumentedRuntime) PodSandboxStatus(ctx context.Context, id string, verbose bool) (out *runtimeapi.PodSandboxStatusResponse, err error) {
	defer func(start time.Time) { r.observe(ctx, callPodSandboxStatus, "sandbox "+shortID(id), start, err) }(time.Now())
	return r.RuntimeService.PodSandboxStatus(ctx, id, verbose)
}

func (r *instrumentedRuntime) ContainerStatus(ctx context.Context, id string, verbose bool) (out *runtimeapi.ContainerStatusResponse, err error) {
	defer func(start time.Time) { r.observe(ctx, callContainerStatus, "container "+shortID(id), start, err) }(time.Now())
	return r.RuntimeService.ContainerStatus(ctx, id, verbose)
}

func (r *instrumentedRuntime) ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) (out []*runtimeapi.PodSandboxStats, err error) {
	defer func(start time.Time) { r.observe(ctx, callListPodSandboxStats, "", start, err) }(time.Now())
	return r.RuntimeService.ListPodSandboxStats(ctx, filter)
}

func (r *instrumentedRuntime) ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) (out []*runtimeapi.ContainerStats, err error) {
	defer func(start time.Time) { r.observe(ctx, callListContainerStats, "", start, err) }(time.Now())
	return r.RuntimeService.ListContainerStats(ctx, filter)
}
