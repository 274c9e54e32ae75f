package agent

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/pleg"
)

// A pod worker reads the pod's runtime status from the PLEG cache, as the
// kubelet's do, instead of inspecting the runtime at every wake-up: a
// container exit costs no CRI call, the event that woke the worker brought the
// status into the cache.
//
// The cache must be newer than the end of the worker's last sync that changed
// the pod in the runtime (created, started, stopped or removed something), or
// the worker could act twice on one state (start a container it has just
// started). The kubelet waits for that (GetNewerThan: the events of its own
// changes are older than the end of its sync, so it waits for the generic
// PLEG's next relist, up to a second; its evented PLEG, since 1.37, only asks
// for relists and never writes the cache). nodekit does not wait:
// the worker then inspects the pod itself and puts what it read in the cache,
// where the PLEG's merges of later events start from it. A sync that changed
// nothing leaves the bound where it was, so the next wake-up reads the cache.
//
// Only the pod's own entry counts, not a refresh of the whole cache: the
// evented PLEG marks the cache current every second when its event channel is
// empty, but events still in the stream are not in the channel. With 250 pods
// starting on two cores they lagged by more than a second, and a worker that
// trusted the refresh started a pod's container a second time (found by the
// idle benchmark: 251 monitors for 250 pods).

// podRuntimeStatus returns the runtime status of pod uid as new as minTime: the
// cache's when the pod's entry is newer (pleg.Cache.GetIfNewerThan: a refresh
// of the whole cache does not do, the evented PLEG's is no proof), else a
// fresh inspection (cached for everyone).
func (a *Agent) podRuntimeStatus(ctx context.Context, uid types.UID, minTime time.Time) (*pleg.PodStatus, error) {
	if st, ok, err := a.cache.GetIfNewerThan(uid, minTime); ok && err == nil {
		a.metrics.statusReads.WithLabelValues("cache").Inc()
		return st, nil
	}
	return a.inspectPod(ctx, uid)
}

// inspectPod reads the runtime status of pod uid from the runtime and puts it
// in the cache (unless the PLEG cached a newer one meanwhile, which it returns).
func (a *Agent) inspectPod(ctx context.Context, uid types.UID) (*pleg.PodStatus, error) {
	a.metrics.statusReads.WithLabelValues("inspect").Inc()
	at := a.clock.Now()
	st, err := pleg.Inspect(ctx, a.rt, uid)
	if err != nil {
		return nil, fmt.Errorf("inspect pod %s: %w", uid, err)
	}
	if !a.cache.Set(uid, st, nil, at) {
		// The PLEG cached a newer status meanwhile.
		if newer, err := a.cache.Get(uid); err == nil && newer != nil {
			return newer, nil
		}
	}
	return st, nil
}

// changeKey marks a context whose runtime calls are tracked: the mutating ones
// set the flag it carries.
type changeKey struct{}

// trackChanges returns a context under which a mutating CRI call (through a
// changeTracker) sets the returned flag.
func trackChanges(ctx context.Context) (context.Context, *atomic.Bool) {
	changed := new(atomic.Bool)
	return context.WithValue(ctx, changeKey{}, changed), changed
}

func markChanged(ctx context.Context) {
	if changed, ok := ctx.Value(changeKey{}).(*atomic.Bool); ok {
		changed.Store(true)
	}
}

// changeTracker is the runtime the pod manager calls: it notes, in the
// context, every call that changes what a pod status shows, successful or not
// (a failed start may still have created the container).
type changeTracker struct {
	internalapi.RuntimeService
}

func (r changeTracker) RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	markChanged(ctx)
	return r.RuntimeService.RunPodSandbox(ctx, cfg, handler)
}

func (r changeTracker) StopPodSandbox(ctx context.Context, id string) error {
	markChanged(ctx)
	return r.RuntimeService.StopPodSandbox(ctx, id)
}

func (r changeTracker) RemovePodSandbox(ctx context.Context, id string) error {
	markChanged(ctx)
	return r.RuntimeService.RemovePodSandbox(ctx, id)
}

func (r changeTracker) CreateContainer(ctx context.Context, sandbox string, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig) (string, error) {
	markChanged(ctx)
	return r.RuntimeService.CreateContainer(ctx, sandbox, cfg, sbCfg)
}

func (r changeTracker) StartContainer(ctx context.Context, id string) error {
	markChanged(ctx)
	return r.RuntimeService.StartContainer(ctx, id)
}

func (r changeTracker) StopContainer(ctx context.Context, id string, timeout int64) error {
	markChanged(ctx)
	return r.RuntimeService.StopContainer(ctx, id, timeout)
}

func (r changeTracker) RemoveContainer(ctx context.Context, id string) error {
	markChanged(ctx)
	return r.RuntimeService.RemoveContainer(ctx, id)
}

func (r changeTracker) UpdateContainerResources(ctx context.Context, id string, resources *runtimeapi.ContainerResources) error {
	markChanged(ctx)
	return r.RuntimeService.UpdateContainerResources(ctx, id, resources)
}
