package agent

import (
	"context"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// instrumentedRuntime counts and times the pod lifecycle calls the agent makes
// (kubelet_runtime_operations_*); every other call passes through.
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
