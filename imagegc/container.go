package imagegc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"
	"k8s.io/utils/clock"
)

// Runtime is the part of the CRI runtime service the container garbage
// collector uses. internalapi.RuntimeService (and so k8s.io/cri-client's
// remote runtime service) satisfies it.
type Runtime interface {
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
	StopContainer(ctx context.Context, containerID string, timeout int64) error
	RemoveContainer(ctx context.Context, containerID string) error
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	StopPodSandbox(ctx context.Context, podSandboxID string) error
	RemovePodSandbox(ctx context.Context, podSandboxID string) error
}

// Default values of ContainerOptions (the kubelet's).
const (
	DefaultMaxPerPodContainer = 1
	DefaultMaxContainers      = -1
	DefaultPodLogsDir         = "/var/log/pods"
	DefaultContainerPeriod    = time.Minute
)

// ContainerOptions configures a ContainerGC. Zero values pick the defaults
// given with each field.
type ContainerOptions struct {
	// MinAge: a container is not removed until this long after it was
	// created (default 0, the kubelet's --minimum-container-ttl-duration).
	MinAge time.Duration
	// MaxPerPodContainer is how many dead instances of each container of a
	// pod are kept; negative means no limit (nil: 1, the kubelet's
	// --maximum-dead-containers-per-container).
	MaxPerPodContainer *int
	// MaxContainers is how many dead containers are kept on the node;
	// negative means no limit (nil: -1, the kubelet's
	// --maximum-dead-containers).
	MaxContainers *int

	// Runtime lists and removes containers and sandboxes (required).
	Runtime Runtime
	// PodDeleted reports whether everything of a pod may go: the agent no
	// longer has it (deleted, or never known once its sources are ready), or
	// it is terminated and being deleted. The kubelet's
	// ShouldPodContentBeRemoved. Required.
	PodDeleted func(uid types.UID) bool
	// PodTerminated reports whether a pod's containers and sandboxes may go
	// although the pod is still known: it is terminated. The kubelet's
	// ShouldPodRuntimeBeRemoved; only asked when GarbageCollect is called with
	// evictNonDeletedPods (default: PodDeleted).
	PodTerminated func(uid types.UID) bool
	// SourcesReady tells Run whether every pod source has delivered its pods,
	// so that a pod unknown to the agent really is deleted (default: always).
	SourcesReady func() bool
	// PodLogsDir holds the pods' log directories, <namespace>_<name>_<uid>
	// (default /var/log/pods).
	PodLogsDir string
	// ContainerRemoved is called after a container was removed by the
	// collector, with its last status (its mounts and annotations name the
	// files the caller may want to remove too, such as its termination
	// message). Optional.
	ContainerRemoved func(ctx context.Context, status *runtimeapi.ContainerStatus)
	// Recorder receives the ContainerGCFailed warnings of Run (optional).
	Recorder Recorder

	// Period is the time between two collections in Run (default 1 min, the
	// kubelet's ContainerGCPeriod).
	Period time.Duration
	// Clock gives the time and drives Run (default: the real clock).
	Clock clock.WithTicker
	// Logger receives the collector's logs (default slog.Default()).
	Logger *slog.Logger
}

// ContainerGC removes dead containers, dead sandboxes and the log
// directories of deleted pods, as the kubelet's container garbage collector
// does. Its methods are safe for concurrent use; collections are serialized.
type ContainerGC struct {
	o                        ContainerOptions
	maxPerPod, maxContainers int
	log                      *slog.Logger
	mu                       sync.Mutex
}

// NewContainerGC checks the options and returns a container garbage collector.
func NewContainerGC(o ContainerOptions) (*ContainerGC, error) {
	var errs []error
	if o.Runtime == nil {
		errs = append(errs, errors.New("Runtime: required"))
	}
	if o.PodDeleted == nil {
		errs = append(errs, errors.New("PodDeleted: required"))
	}
	if o.MinAge < 0 {
		errs = append(errs, fmt.Errorf("MinAge %v: must not be negative", o.MinAge))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("imagegc: invalid container options: %w", err)
	}
	if o.PodTerminated == nil {
		o.PodTerminated = o.PodDeleted
	}
	if o.SourcesReady == nil {
		o.SourcesReady = func() bool { return true }
	}
	if o.PodLogsDir == "" {
		o.PodLogsDir = DefaultPodLogsDir
	}
	if o.Period <= 0 {
		o.Period = DefaultContainerPeriod
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	g := &ContainerGC{o: o, maxPerPod: DefaultMaxPerPodContainer, maxContainers: DefaultMaxContainers,
		log: o.Logger.With("component", "containergc")}
	if o.MaxPerPodContainer != nil {
		g.maxPerPod = *o.MaxPerPodContainer
	}
	if o.MaxContainers != nil {
		g.maxContainers = *o.MaxContainers
	}
	return g, nil
}

// Run collects at once and then every Period until ctx ends, with
// SourcesReady() and without evicting non-deleted pods. Failures are logged
// and reported to the Recorder as ContainerGCFailed.
func (g *ContainerGC) Run(ctx context.Context) {
	ticker := g.o.Clock.NewTicker(g.o.Period)
	defer ticker.Stop()
	failed := false
	for {
		if err := g.GarbageCollect(ctx, g.o.SourcesReady(), false); err != nil {
			if ctx.Err() != nil {
				return
			}
			g.log.Error("container garbage collection failed", "err", err)
			g.o.Recorder.record(ReasonContainerGCFailed, err.Error())
			failed = true
		} else if failed {
			g.log.Info("container garbage collection succeeded")
			failed = false
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

// DeleteUnusedContainers is the on-demand collection the kubelet's eviction
// manager runs to reclaim disk before evicting pods (its
// DeleteAllUnusedContainers): GarbageCollect with SourcesReady() and
// evictNonDeletedPods, so that every dead container and sandbox of a
// terminated pod goes too.
func (g *ContainerGC) DeleteUnusedContainers(ctx context.Context) error {
	return g.GarbageCollect(ctx, g.o.SourcesReady(), true)
}

// GarbageCollect applies the policy once, in three steps.
//
// Containers: the evictable ones are not running and were created at least
// MinAge ago. When allSourcesReady, those of deleted pods (PodDeleted, or
// PodTerminated with evictNonDeletedPods) are all removed. Of each container
// of a pod (pod UID and container name) the newest MaxPerPodContainer are
// kept. If more than MaxContainers remain on the node, each container of a
// pod keeps an equal share (MaxContainers over their number, at least 1) and
// then the oldest go until MaxContainers remain. A container in an unknown
// state is stopped before it is removed; a removed container's log file and
// its rotations (<path>.<suffix>) are removed with it.
//
// Sandboxes: a sandbox that is not ready and holds no container is removed if
// its pod is deleted (only when allSourcesReady) and otherwise unless it is
// the pod's newest.
//
// Logs: when allSourcesReady, the directories under PodLogsDir of deleted
// pods are removed.
//
// Containers and sandboxes without the io.kubernetes.pod.uid label are not
// the agent's and are left alone. A failure does not stop the rest; the error
// joins them all.
func (g *ContainerGC) GarbageCollect(ctx context.Context, allSourcesReady, evictNonDeletedPods bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	gone := func(uid types.UID) bool {
		return g.o.PodDeleted(uid) || (evictNonDeletedPods && g.o.PodTerminated(uid))
	}
	var errs []error
	if err := g.evictContainers(ctx, allSourcesReady, gone); err != nil {
		errs = append(errs, err)
	}
	if err := g.evictSandboxes(ctx, allSourcesReady, gone); err != nil {
		errs = append(errs, err)
	}
	if allSourcesReady {
		if err := g.evictLogDirs(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// evictUnit groups the instances of one container of one pod.
type evictUnit struct {
	uid  types.UID
	name string
}

// deadContainer is a container the collector may remove.
type deadContainer struct {
	id          string
	name        string
	created     time.Time
	unknown     bool // in an unknown state: stop it first
	annotations map[string]string
}

// newestFirst orders containers by creation time, newest first.
func newestFirst(a, b deadContainer) int {
	if c := b.created.Compare(a.created); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

func (g *ContainerGC) evictContainers(ctx context.Context, allSourcesReady bool, gone func(types.UID) bool) error {
	containers, err := g.o.Runtime.ListContainers(ctx, nil)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	newest := g.o.Clock.Now().Add(-g.o.MinAge)
	units := map[evictUnit][]deadContainer{}
	for _, c := range containers {
		if c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		uid := types.UID(c.GetLabels()[kubetypes.KubernetesPodUIDLabel])
		if uid == "" {
			continue
		}
		created := time.Unix(0, c.GetCreatedAt())
		if created.After(newest) {
			continue
		}
		name := c.GetMetadata().GetName()
		if name == "" {
			name = c.GetLabels()[kubetypes.KubernetesContainerNameLabel]
		}
		k := evictUnit{uid: uid, name: name}
		units[k] = append(units[k], deadContainer{
			id: c.GetId(), name: name, created: created,
			unknown:     c.GetState() == runtimeapi.ContainerState_CONTAINER_UNKNOWN,
			annotations: c.GetAnnotations(),
		})
	}

	var errs []error
	if allSourcesReady {
		for k, list := range units {
			if gone(k.uid) {
				errs = append(errs, g.removeOldest(ctx, list, len(list))...)
				delete(units, k)
			}
		}
	}
	if g.maxPerPod >= 0 {
		errs = append(errs, g.keepNewest(ctx, units, g.maxPerPod)...)
	}
	if g.maxContainers >= 0 && countContainers(units) > g.maxContainers {
		// An equal share for each container of a pod, at least one...
		errs = append(errs, g.keepNewest(ctx, units, max(1, g.maxContainers/len(units)))...)
		// ...then the oldest on the node go.
		if n := countContainers(units); n > g.maxContainers {
			all := make([]deadContainer, 0, n)
			for _, list := range units {
				all = append(all, list...)
			}
			errs = append(errs, g.removeOldest(ctx, all, n-g.maxContainers)...)
		}
	}
	return errors.Join(errs...)
}

func countContainers(units map[evictUnit][]deadContainer) int {
	n := 0
	for _, list := range units {
		n += len(list)
	}
	return n
}

// keepNewest removes all but the newest keep containers of each unit.
func (g *ContainerGC) keepNewest(ctx context.Context, units map[evictUnit][]deadContainer, keep int) []error {
	var errs []error
	for k, list := range units {
		if n := len(list) - keep; n > 0 {
			errs = append(errs, g.removeOldest(ctx, list, n)...)
			units[k] = list[:keep]
		}
	}
	return errs
}

// removeOldest sorts list newest first (in place) and removes its n oldest
// containers. Those it failed to remove are still counted as removed, as the
// kubelet does, so that one stuck container does not make the collector
// remove more of the others.
func (g *ContainerGC) removeOldest(ctx context.Context, list []deadContainer, n int) []error {
	slices.SortFunc(list, newestFirst)
	var errs []error
	for i := len(list) - 1; i >= len(list)-n && i >= 0; i-- {
		if err := g.removeContainer(ctx, list[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// removeContainer stops a container in an unknown state, removes it, then its
// log files.
func (g *ContainerGC) removeContainer(ctx context.Context, c deadContainer) error {
	if c.unknown {
		grace := stopTimeout(c.annotations)
		g.log.Info("stopping container in unknown state before removing it", "container", c.id, "name", c.name, "timeout", grace)
		if err := g.o.Runtime.StopContainer(ctx, c.id, grace); err != nil && !isNotFound(err) {
			return fmt.Errorf("stop container %s (%s) in unknown state: %w", c.name, c.id, err)
		}
	}
	resp, err := g.o.Runtime.ContainerStatus(ctx, c.id, false)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("status of container %s (%s): %w", c.name, c.id, err)
	}
	g.log.Debug("removing container", "container", c.id, "name", c.name, "created", c.created)
	if err := g.o.Runtime.RemoveContainer(ctx, c.id); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove container %s (%s): %w", c.name, c.id, err)
	}
	st := resp.GetStatus()
	if p := st.GetLogPath(); filepath.IsAbs(p) {
		removeLogFiles(p)
	}
	if g.o.ContainerRemoved != nil && st != nil {
		g.o.ContainerRemoved(ctx, st)
	}
	return nil
}

// removeLogFiles removes a CRI log file and its rotations (<path>.<suffix>).
func removeLogFiles(path string) {
	_ = os.Remove(path)
	rotated, _ := filepath.Glob(path + ".*")
	for _, r := range rotated {
		_ = os.Remove(r)
	}
}

// Annotations the kubelet puts on containers with their pod's grace periods.
const (
	annotationTerminationGracePeriod = "io.kubernetes.pod.terminationGracePeriod"
	annotationDeletionGracePeriod    = "io.kubernetes.pod.deletionGracePeriod"
	minGracePeriodSeconds            = 2
)

// stopTimeout is the grace period the kubelet gives a container it kills
// without its pod: the pod's deletion grace period, else its termination
// grace period, from the container's annotations; at least 2 seconds.
func stopTimeout(annotations map[string]string) int64 {
	grace := int64(minGracePeriodSeconds)
	for _, k := range []string{annotationDeletionGracePeriod, annotationTerminationGracePeriod} {
		if v, err := strconv.ParseInt(annotations[k], 10, 64); err == nil {
			grace = v
			break
		}
	}
	return max(grace, minGracePeriodSeconds)
}

// deadSandbox is a sandbox as the collector sees it.
type deadSandbox struct {
	id      string
	created time.Time
	active  bool // ready, or still holding a container
}

func (g *ContainerGC) evictSandboxes(ctx context.Context, allSourcesReady bool, gone func(types.UID) bool) error {
	containers, err := g.o.Runtime.ListContainers(ctx, nil)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	sandboxes, err := g.o.Runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("list pod sandboxes: %w", err)
	}
	holding := map[string]bool{}
	for _, c := range containers {
		holding[c.GetPodSandboxId()] = true
	}
	byPod := map[types.UID][]deadSandbox{}
	for _, s := range sandboxes {
		uid := types.UID(s.GetLabels()[kubetypes.KubernetesPodUIDLabel])
		if uid == "" {
			continue
		}
		byPod[uid] = append(byPod[uid], deadSandbox{
			id:      s.GetId(),
			created: time.Unix(0, s.GetCreatedAt()),
			active:  s.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY || holding[s.GetId()],
		})
	}
	var errs []error
	for uid, list := range byPod {
		slices.SortFunc(list, func(a, b deadSandbox) int {
			if c := b.created.Compare(a.created); c != 0 {
				return c
			}
			return cmp.Compare(a.id, b.id)
		})
		if !allSourcesReady || !gone(uid) {
			list = list[1:] // the pod still exists: keep its newest sandbox
		}
		for _, s := range list {
			if s.active {
				continue
			}
			if err := g.removeSandbox(ctx, s.id); err != nil {
				errs = append(errs, fmt.Errorf("pod %s: %w", uid, err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeSandbox stops (in case nobody did) and removes a sandbox.
func (g *ContainerGC) removeSandbox(ctx context.Context, id string) error {
	g.log.Debug("removing sandbox", "sandbox", id)
	if err := g.o.Runtime.StopPodSandbox(ctx, id); err != nil && !isNotFound(err) {
		return fmt.Errorf("stop sandbox %s before removing it: %w", id, err)
	}
	if err := g.o.Runtime.RemovePodSandbox(ctx, id); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove sandbox %s: %w", id, err)
	}
	return nil
}

// evictLogDirs removes the log directories of deleted pods. A directory is
// named <namespace>_<name>_<uid> (or <uid>, the old layout): its last
// "_"-separated field is the pod's UID.
func (g *ContainerGC) evictLogDirs() error {
	entries, err := os.ReadDir(g.o.PodLogsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pod logs directory: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		uid := types.UID(name[strings.LastIndex(name, "_")+1:])
		if uid == "" || !g.o.PodDeleted(uid) {
			continue
		}
		g.log.Debug("removing pod logs", "pod", uid, "dir", name)
		if err := os.RemoveAll(filepath.Join(g.o.PodLogsDir, name)); err != nil {
			errs = append(errs, fmt.Errorf("remove pod log directory: %w", err))
		}
	}
	return errors.Join(errs...)
}
