package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodekit-dev/nodekit/agent/podruntime"
	"github.com/nodekit-dev/nodekit/agent/timeline"
	"github.com/nodekit-dev/nodekit/eviction"
	"github.com/nodekit-dev/nodekit/imagegc"
)

// evicted is a pod the eviction manager evicted, or admission refused: it must
// not run again, and its final status carries the reason.
type evicted struct {
	status v1.PodStatus // Phase Failed, Reason, Message and a DisruptionTarget condition
	grace  *int64       // the grace period of its termination; nil: the pod's own
	done   chan struct{}
	once   sync.Once
}

func (e *evicted) finish() { e.once.Do(func() { close(e.done) }) }

// markEvicted records the pod's eviction (the first one counts).
func (a *Agent) markEvicted(uid types.UID, st v1.PodStatus, grace *int64) *evicted {
	a.evictMu.Lock()
	defer a.evictMu.Unlock()
	if e, ok := a.evicted[uid]; ok {
		return e
	}
	e := &evicted{status: st, grace: grace, done: make(chan struct{})}
	a.evicted[uid] = e
	return e
}

func (a *Agent) evictedPod(uid types.UID) *evicted {
	a.evictMu.Lock()
	defer a.evictMu.Unlock()
	return a.evicted[uid]
}

// forgetEvicted drops the record of a pod that left the node.
func (a *Agent) forgetEvicted(uid types.UID) {
	a.evictMu.Lock()
	defer a.evictMu.Unlock()
	if e, ok := a.evicted[uid]; ok {
		e.finish()
		delete(a.evicted, uid)
	}
}

// withEviction merges an eviction's status into st: phase Failed, its reason
// and message, its DisruptionTarget condition.
func withEviction(st v1.PodStatus, e *evicted) v1.PodStatus {
	st.Phase = v1.PodFailed
	st.Reason, st.Message = e.status.Reason, e.status.Message
	for _, c := range e.status.Conditions {
		replaced := false
		for i := range st.Conditions {
			if st.Conditions[i].Type == c.Type {
				st.Conditions[i], replaced = c, true
			}
		}
		if !replaced {
			st.Conditions = append(st.Conditions, c)
		}
	}
	return st
}

// EvictPod is the eviction manager's PodKiller: the pod's worker stops it with
// the given grace period and records the eviction as its final status. It returns
// once the pod's containers are stopped (or ctx ends).
func (k evictionKiller) EvictPod(ctx context.Context, pod *v1.Pod, grace int64, st v1.PodStatus) error {
	a := k.a
	if !a.workers.known(pod.UID) {
		return nil // gone meanwhile: nothing of it runs
	}
	e := a.markEvicted(pod.UID, st, &grace)
	a.log.Info("evicting pod", "pod", podRef(pod), "grace", grace, "message", st.Message)
	a.recorder.Eventf(podruntime.PodReference(pod), v1.EventTypeWarning, eviction.Reason, "%s", st.Message)
	a.timeline.Record(pod.UID, timeline.Entry{Kind: timeline.Status, What: "evicted", Reason: eviction.Reason,
		Message: fmt.Sprintf("%s (grace period %ds)", st.Message, grace), Event: v1.EventTypeWarning})
	a.workers.kick(pod.UID)
	// The worker stops the pod within its grace period (preStop hooks included);
	// the bound keeps the eviction manager's passes going should it not.
	limit := time.NewTimer(time.Duration(grace)*time.Second + 2*time.Minute)
	defer limit.Stop()
	select {
	case <-e.done:
		return nil
	case <-limit.C:
		return fmt.Errorf("evict pod %s: not stopped within its grace period of %ds and 2 minutes", podRef(pod), grace)
	case <-ctx.Done():
		return fmt.Errorf("evict pod %s: %w", podRef(pod), ctx.Err())
	}
}

type evictionKiller struct{ a *Agent }

// activePods are the pods the eviction manager may evict: wanted, not evicted,
// not in a terminal phase.
func (a *Agent) activePods() []*v1.Pod {
	var out []*v1.Pod
	for _, p := range a.Pods() {
		if p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed || a.evictedPod(p.UID) != nil {
			continue
		}
		out = append(out, p)
	}
	return out
}

// admit runs the kubelet's admission for a pod new to the node: the general
// predicates (room, node name, affinity, host ports, taints; admitPredicates),
// then the eviction manager's (node pressure). A refused pod is recorded as
// failed, with the kubelet's reason and message, and never started.
func (a *Agent) admit(pod *v1.Pod) {
	var others []*v1.Pod
	for _, p := range a.activePods() {
		if p.UID != pod.UID {
			others = append(others, p)
		}
	}
	reason, msg, ok := admitPredicates(pod, a.admissionNode(), others)
	if ok && a.evictor != nil {
		ok, reason, msg = a.evictor.Admit(pod)
	}
	if ok {
		return
	}
	a.log.Warn("pod not admitted", "pod", podRef(pod), "reason", reason, "message", msg)
	a.recorder.Eventf(podruntime.PodReference(pod), v1.EventTypeWarning, reason, "%s", msg)
	a.timeline.Record(pod.UID, timeline.Entry{Kind: timeline.Status, What: "rejected at admission", Reason: reason, Message: msg, Event: v1.EventTypeWarning})
	a.markEvicted(pod.UID, v1.PodStatus{Phase: v1.PodFailed, Reason: reason, Message: "Pod was rejected: " + msg}, nil)
}

// diskLayout answers whether the runtime's image filesystem is another
// filesystem than the root dir's.
type diskLayout struct{ a *Agent }

func (d diskLayout) HasDedicatedImageFs(ctx context.Context) (bool, error) {
	fs, err := d.a.opts.Images.ImageFsInfo(ctx)
	if err != nil {
		return false, err
	}
	if len(fs.GetImageFilesystems()) == 0 {
		return false, nil
	}
	mp := fs.GetImageFilesystems()[0].GetFsId().GetMountpoint()
	if mp == "" {
		return false, nil
	}
	return !sameDevice(mp, d.a.cfg.RootDir), nil
}

// memoryNotifiers are kernel notifiers for the hard memory thresholds; where the
// kernel offers none (no cgroup access), passes every 10 s are all there is.
func (a *Agent) memoryNotifiers(cfg eviction.Config) []eviction.ThresholdNotifier {
	var out []eviction.ThresholdNotifier
	for _, t := range cfg.Thresholds {
		if t.GracePeriod != 0 {
			continue
		}
		var dir string
		switch {
		case t.Signal == eviction.SignalMemoryAvailable:
			dir = memoryRoot()
		case t.Signal == eviction.SignalAllocatableMemoryAvailable && a.cgroups != nil:
			dir = filepath.Join(memoryRoot(), a.cgroups.Path(""))
		default:
			continue
		}
		n, err := eviction.NewMemoryNotifier(eviction.MemoryNotifierOptions{Threshold: t, CgroupDir: dir, Logger: a.log.With("component", "eviction")})
		if err != nil {
			a.log.Warn("no kernel memory notification; memory is checked every pass only", "threshold", t.String(), "err", err)
			continue
		}
		out = append(out, n)
	}
	return out
}

// memoryRoot is the root of the memory cgroup hierarchy.
func memoryRoot() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "/sys/fs/cgroup"
	}
	return "/sys/fs/cgroup/memory"
}

// summary is the eviction manager's stats source: the Summary API.
func (a *Agent) summary(ctx context.Context) (*statsapi.Summary, error) {
	return provider{a}.Summary(ctx)
}

// newResourceManagers builds the eviction manager and the image and container
// garbage collectors from the configuration.
func (a *Agent) newResourceManagers(cfg eviction.Config) error {
	k := &a.cfg.Kubelet
	imgOpts, err := imagegc.OptionsFromConfig(k)
	if err != nil {
		return err
	}
	imgOpts.Images, imgOpts.Runtime = a.opts.Images, a.rt
	imgOpts.Clock, imgOpts.Logger = a.clock, a.log.With("component", "imagegc")
	imgOpts.Recorder = func(reason, message string) {
		a.log.Warn("image garbage collection", "reason", reason, "message", message)
		a.recorder.Eventf(a.nodeRef(), v1.EventTypeWarning, reason, "%s", message)
	}
	if a.imageGC, err = imagegc.New(imgOpts); err != nil {
		return err
	}
	a.containerGC, err = imagegc.NewContainerGC(imagegc.ContainerOptions{
		Runtime: a.rt,
		// A pod is deleted when no source wants it and no worker is busy with it.
		PodDeleted: func(uid types.UID) bool {
			a.mu.RLock()
			_, wanted := a.desired[uid]
			a.mu.RUnlock()
			return !wanted && !a.workers.known(uid)
		},
		// Containers of a pod that ended (evicted, or done with restartPolicy
		// Never) may go when the eviction manager needs disk back.
		PodTerminated: func(uid types.UID) bool {
			if a.evictedPod(uid) != nil {
				return true
			}
			st, ok := a.status.GetPodStatus(uid)
			return ok && (st.Phase == v1.PodFailed || st.Phase == v1.PodSucceeded)
		},
		SourcesReady: a.sourcesReady.Load,
		// Termination message files go with their containers.
		ContainerRemoved: a.pods.ContainerRemoved,
		PodLogsDir:       k.PodLogsDir,
		Clock:            a.clock,
		Logger:           a.log.With("component", "containergc"),
		Recorder: func(reason, message string) {
			a.log.Warn("container garbage collection", "reason", reason, "message", message)
			a.recorder.Eventf(a.nodeRef(), v1.EventTypeWarning, reason, "%s", message)
		},
	})
	if err != nil {
		return err
	}
	evOpts := eviction.Options{
		Config:      cfg,
		Summary:     eviction.SummaryProviderFunc(a.summary),
		Pods:        eviction.PodListerFunc(a.activePods),
		Killer:      evictionKiller{a},
		ContainerGC: settledContainerGC{a},
		ImageGC:     a.imageGC,
		DiskInfo:    diskLayout{a},
		Notifiers:   a.memoryNotifiers(cfg),
		Clock:       a.clock,
		Logger:      a.log.With("component", "eviction"),
	}
	if m, ok := a.node0.allocatable[v1.ResourceMemory]; ok {
		evOpts.NodeAllocatableMemory = uint64(m.Value())
	}
	if k.LocalStorageCapacityIsolation != nil && !*k.LocalStorageCapacityIsolation {
		evOpts.DisableLocalStorageEviction = true
	}
	a.evictor, err = eviction.New(evOpts)
	return err
}

// settledContainerGC is the container GC as the eviction manager's node-level
// disk reclaim: a runtime may free a removed container's files after
// RemoveContainer returned (nodekit's shim deletes them in the background, and
// containerd's snapshotter does too), so it waits, at most 3 s, until the
// filesystems of the root dir and of the images stop gaining free space. The
// manager's next observation then sees what the collection freed instead of
// evicting a pod for space that is on its way back.
type settledContainerGC struct{ a *Agent }

func (s settledContainerGC) DeleteUnusedContainers(ctx context.Context) error {
	paths := []string{s.a.cfg.RootDir}
	if fs, err := s.a.opts.Images.ImageFsInfo(ctx); err == nil {
		for _, u := range fs.GetImageFilesystems() {
			if mp := u.GetFsId().GetMountpoint(); mp != "" {
				paths = append(paths, mp)
			}
		}
	}
	free := func() uint64 {
		var sum uint64
		for _, p := range paths {
			_, avail, _, _, _ := fsFigures(p)
			sum += avail
		}
		return sum
	}
	err := s.a.containerGC.DeleteUnusedContainers(ctx)
	prev := free()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(3 * time.Second)
	for stable := 0; stable < 2 && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return err
		case <-t.C:
		}
		cur := free()
		if cur == prev {
			stable++
		} else {
			stable = 0
		}
		prev = cur
	}
	return err
}
