package agent

import (
	"context"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// instrumentedRuntime counts and times the runtime calls the agent makes
// (kubelet_runtime_operations_*): pod lifecycle, list, status and stats calls;
// the rest (version, the event stream) passes through.
type instrumentedRuntime struct {
	internalapi.RuntimeService
	m *metrics
}

func (a *Agent) instrumented(rt internalapi.RuntimeService) internalapi.RuntimeService {
	return &instrumentedRuntime{RuntimeService: rt, m: a.metrics}
}

func (r *instrumentedRuntime) observe(op string, start time.Time, err error) {
	r.m.observeRuntime(op, time.Since(start), err)
}

func (r *instrumentedRuntime) RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (id string, err error) {
	defer func(start time.Time) { r.observe("run_podsandbox", start, err) }(time.Now())
	return r.RuntimeService.RunPodSandbox(ctx, cfg, handler)
}

func (r *instrumentedRuntime) StopPodSandbox(ctx context.Context, id string) (err error) {
	defer func(start time.Time) { r.observe("stop_podsandbox", start, err) }(time.Now())
	return r.RuntimeService.StopPodSandbox(ctx, id)
}

func (r *instrumentedRuntime) RemovePodSandbox(ctx context.Context, id string) (err error) {
	defer func(start time.Time) { r.observe("remove_podsandbox", start, err) }(time.Now())
	return r.RuntimeService.RemovePodSandbox(ctx, id)
}

func (r *instrumentedRuntime) CreateContainer(ctx context.Context, sandbox string, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig) (id string, err error) {
	defer func(start time.Time) { r.observe("create_container", start, err) }(time.Now())
	return r.RuntimeService.CreateContainer(ctx, sandbox, cfg, sbCfg)
}

func (r *instrumentedRuntime) StartContainer(ctx context.Context, id string) (err error) {
	defer func(start time.Time) { r.observe("start_container", start, err) }(time.Now())
	return r.RuntimeService.StartContainer(ctx, id)
}

func (r *instrumentedRuntime) StopContainer(ctx context.Context, id string, timeout int64) (err error) {
	defer func(start time.Time) { r.observe("stop_container", start, err) }(time.Now())
	return r.RuntimeService.StopContainer(ctx, id, timeout)
}

func (r *instrumentedRuntime) RemoveContainer(ctx context.Context, id string) (err error) {
	defer func(start time.Time) { r.observe("remove_container", start, err) }(time.Now())
	return r.RuntimeService.RemoveContainer(ctx, id)
}

func (r *instrumentedRuntime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error) {
	defer func(start time.Time) { r.observe("exec_sync", start, err) }(time.Now())
	return r.RuntimeService.ExecSync(ctx, id, cmd, timeout)
}

func (r *instrumentedRuntime) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) (out []*runtimeapi.PodSandbox, err error) {
	defer func(start time.Time) { r.observe("list_podsandbox", start, err) }(time.Now())
	return r.RuntimeService.ListPodSandbox(ctx, filter)
}

func (r *instrumentedRuntime) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) (out []*runtimeapi.Container, err error) {
	defer func(start time.Time) { r.observe("list_containers", start, err) }(time.Now())
	return r.RuntimeService.ListContainers(ctx, filter)
}

func (r *instrumentedRuntime) PodSandboxStatus(ctx context.Context, id string, verbose bool) (out *runtimeapi.PodSandboxStatusResponse, err error) {
	defer func(start time.Time) { r.observe("podsandbox_status", start, err) }(time.Now())
	return r.RuntimeService.PodSandboxStatus(ctx, id, verbose)
}

func (r *instrumentedRuntime) ContainerStatus(ctx context.Context, id string, verbose bool) (out *runtimeapi.ContainerStatusResponse, err error) {
	defer func(start time.Time) { r.observe("container_status", start, err) }(time.Now())
	return r.RuntimeService.ContainerStatus(ctx, id, verbose)
}

func (r *instrumentedRuntime) ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) (out []*runtimeapi.PodSandboxStats, err error) {
	defer func(start time.Time) { r.observe("list_podsandbox_stats", start, err) }(time.Now())
	return r.RuntimeService.ListPodSandboxStats(ctx, filter)
}

func (r *instrumentedRuntime) ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) (out []*runtimeapi.ContainerStats, err error) {
	defer func(start time.Time) { r.observe("list_container_stats", start, err) }(time.Now())
	return r.RuntimeService.ListContainerStats(ctx, filter)
}
