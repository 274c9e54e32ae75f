package eviction

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"
)

// Reason is the status reason of an evicted pod and of a refused admission.
const Reason = "Evicted"

// HardEvictionGracePeriodSeconds is the grace period of pods evicted for a hard
// threshold or for exceeding their local storage limits: the kubelet's
// immediate eviction grace period.
const HardEvictionGracePeriodSeconds int64 = 1

// DefaultInterval is the default time between two passes (the kubelet's
// eviction monitoring period).
const DefaultInterval = 10 * time.Second

// notifierRefreshInterval is how often passes re-arm the ThresholdNotifiers.
const notifierRefreshInterval = 10 * time.Second

// SummaryProvider gives the node's stats (the kubelet's /stats/summary).
type SummaryProvider interface {
	Get(ctx context.Context) (*statsapi.Summary, error)
}

// SummaryProviderFunc adapts a function to SummaryProvider.
type SummaryProviderFunc func(ctx context.Context) (*statsapi.Summary, error)

// Get calls f.
func (f SummaryProviderFunc) Get(ctx context.Context) (*statsapi.Summary, error) { return f(ctx) }

// PodLister gives the pods that may be evicted: those bound to the node and not
// yet terminated.
type PodLister interface {
	ActivePods() []*v1.Pod
}

// PodListerFunc adapts a function to PodLister.
type PodListerFunc func() []*v1.Pod

// ActivePods calls f.
func (f PodListerFunc) ActivePods() []*v1.Pod { return f() }

// PodKiller stops evicted pods.
type PodKiller interface {
	// EvictPod stops the pod's containers within gracePeriodSeconds (which
	// replaces the pod's own terminationGracePeriodSeconds) and records status
	// as the pod's final status. status carries Phase Failed, Reason "Evicted",
	// the eviction message and, for evictions under node pressure, a
	// DisruptionTarget condition with reason TerminationByKubelet; merge these
	// into the pod's status. EvictPod should return once the containers are
	// stopped, so that the next pass sees the resources they freed.
	EvictPod(ctx context.Context, pod *v1.Pod, gracePeriodSeconds int64, status v1.PodStatus) error
}

// ImageGC frees disk by deleting images no container uses.
type ImageGC interface {
	DeleteUnusedImages(ctx context.Context) (freedBytes uint64, err error)
}

// ContainerGC frees disk by deleting exited containers no pod needs.
type ContainerGC interface {
	DeleteUnusedContainers(ctx context.Context) error
}

// DiskInfoProvider says how the node's disks are laid out.
type DiskInfoProvider interface {
	// HasDedicatedImageFs reports whether the runtime keeps images and
	// writable layers on a filesystem other than the nodefs.
	HasDedicatedImageFs(ctx context.Context) (bool, error)
}

// ThresholdNotifier wakes the manager when the kernel sees a threshold crossed,
// between two regular passes (see NewMemoryNotifier).
type ThresholdNotifier interface {
	// UpdateThreshold re-arms the notifier from fresh stats; passes call it
	// every 10 s at most.
	UpdateThreshold(summary *statsapi.Summary) error
	// Run waits for kernel events and calls notify for each, until ctx ends.
	Run(ctx context.Context, notify func()) error
}

// Options configures a Manager. Summary, Pods and Killer are required; zero
// values of the others pick the defaults given with each field.
type Options struct {
	// Config holds the thresholds, the pressure transition period (default
	// DefaultPressureTransitionPeriod) and the soft eviction grace period cap;
	// ParseConfig gives it from a kubelet configuration.
	Config

	// Summary gives the node's stats (required).
	Summary SummaryProvider
	// Pods lists the pods that may be evicted (required).
	Pods PodLister
	// Killer evicts pods (required).
	Killer PodKiller
	// ContainerGC and ImageGC free disk, in that order, before any pod is
	// evicted for a disk signal (optional: without them, pods are evicted).
	ContainerGC ContainerGC
	ImageGC     ImageGC
	// DiskInfo tells whether the imagefs is a filesystem of its own; asked
	// until it answers, before the first pass (default: one filesystem).
	DiskInfo DiskInfoProvider
	// Notifiers wake the manager between passes; Run runs them and passes
	// re-arm them (optional).
	Notifiers []ThresholdNotifier
	// IsCritical tells the pods that are never evicted and always admitted
	// (default IsCriticalPod).
	IsCritical func(*v1.Pod) bool
	// NodeAllocatableMemory, in bytes, computes allocatableMemory.available
	// (allocatable minus the pods' working sets) when the Summary has no "pods"
	// system container; 0 leaves that signal unobserved then.
	NodeAllocatableMemory uint64
	// DisableLocalStorageEviction turns off evicting pods that exceed an
	// emptyDir sizeLimit or an ephemeral-storage limit (the kubelet's
	// localStorageCapacityIsolation: false).
	DisableLocalStorageEviction bool
	// Clock drives passes and timestamps (default: the real clock).
	Clock clock.WithTicker
	// Logger receives the manager's logs (default slog.Default()).
	Logger *slog.Logger
	// Interval is the time between passes (default DefaultInterval).
	Interval time.Duration
}

// Manager watches the node's resources and evicts pods to keep the node
// stable, as the kubelet's eviction manager does. Its methods are safe for
// concurrent use.
type Manager struct {
	o      Options
	log    *slog.Logger
	notify chan struct{}

	// syncMu serializes passes; the fields after it belong to passes.
	syncMu           sync.Mutex
	fsKnown          bool
	dedicatedImageFs bool
	rank             map[Signal]rankFunc
	reclaim          map[Signal][]reclaimStep
	firstObserved    map[int]time.Time                  // threshold index → first met
	condObserved     map[v1.NodeConditionType]time.Time // condition → last met
	met              []int                              // thresholds met past their grace period
	lastObs          observations
	notifiersUpdated time.Time

	mu         sync.RWMutex
	conditions []v1.NodeConditionType                    // pressure conditions, in conditionOrder
	reported   map[v1.NodeConditionType]v1.NodeCondition // by NodeConditions

	// afterPass, set by tests, runs in Run after each pass once the timer
	// for the next one is set.
	afterPass func()
}

type reclaimStep func(ctx context.Context) error

// New returns a Manager; Run starts it.
func New(o Options) (*Manager, error) {
	switch {
	case o.Summary == nil:
		return nil, errors.New("eviction: Options.Summary is required")
	case o.Pods == nil:
		return nil, errors.New("eviction: Options.Pods is required")
	case o.Killer == nil:
		return nil, errors.New("eviction: Options.Killer is required")
	}
	for i, t := range o.Thresholds {
		if err := t.validate(); err != nil {
			return nil, fmt.Errorf("eviction: Options.Thresholds[%d] (%s): %w", i, t.Signal, err)
		}
	}
	if o.PressureTransitionPeriod < 0 || o.MaxPodGracePeriodSeconds < 0 {
		return nil, errors.New("eviction: negative PressureTransitionPeriod or MaxPodGracePeriodSeconds")
	}
	o.Thresholds = slices.Clone(o.Thresholds)
	if o.PressureTransitionPeriod == 0 {
		o.PressureTransitionPeriod = DefaultPressureTransitionPeriod
	}
	if o.IsCritical == nil {
		o.IsCritical = IsCriticalPod
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	return &Manager{
		o:             o,
		log:           o.Logger,
		notify:        make(chan struct{}, 1),
		firstObserved: map[int]time.Time{},
		condObserved:  map[v1.NodeConditionType]time.Time{},
		reported:      map[v1.NodeConditionType]v1.NodeCondition{},
	}, nil
}

// Run makes a pass every Interval, and at once after Notify, until ctx ends;
// it also runs the Notifiers. Call it once.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, n := range m.o.Notifiers {
		wg.Go(func() {
			if err := n.Run(ctx, m.Notify); err != nil && ctx.Err() == nil {
				m.log.Warn("eviction: threshold notifier stopped", "err", err)
			}
		})
	}
	for {
		if _, err := m.Synchronize(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("eviction: pass failed", "err", err)
		}
		t := m.o.Clock.NewTimer(m.o.Interval)
		if m.afterPass != nil {
			m.afterPass()
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.notify:
			t.Stop()
		case <-t.C():
		}
	}
}

// Notify asks Run for a pass now (a kernel notifier's callback). It never blocks.
func (m *Manager) Notify() {
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

// Synchronize makes one pass: it observes the signals, updates the node
// conditions, evicts the pods exceeding their local storage limits and, when a
// threshold is met past its grace period, reclaims node-level resources or
// evicts one pod. It returns the pods it evicted (or tried to: the error tells
// which failed).
func (m *Manager) Synchronize(ctx context.Context) ([]*v1.Pod, error) {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()

	localStorage := !m.o.DisableLocalStorageEviction
	if len(m.o.Thresholds) == 0 && !localStorage {
		return nil, nil
	}
	if !m.fsKnown {
		if m.o.DiskInfo != nil {
			dedicated, err := m.o.DiskInfo.HasDedicatedImageFs(ctx)
			if err != nil {
				return nil, fmt.Errorf("eviction: find whether the imagefs is dedicated: %w", err)
			}
			m.dedicatedImageFs = dedicated
		}
		m.rank = rankFuncs(m.dedicatedImageFs)
		m.reclaim = m.reclaimSteps(m.dedicatedImageFs)
		m.fsKnown = true
	}

	pods := m.o.Pods.ActivePods()
	summary, err := m.o.Summary.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("eviction: get stats summary: %w", err)
	}
	if summary == nil {
		return nil, errors.New("eviction: get stats summary: no summary")
	}
	now := m.o.Clock.Now()
	m.updateNotifiers(summary, now)

	obs := observe(summary, m.o.NodeAllocatableMemory)
	stats := podStatsByUID(summary)
	m.logObservations("eviction: observations", obs)

	// Thresholds met now, and those met before whose min reclaim is not done.
	var metNow []int
	for i, t := range m.o.Thresholds {
		ok, observed := met(t, obs, false)
		if !observed {
			m.log.Debug("eviction: no observation for signal", "signal", t.Signal)
		}
		if ok || (slices.Contains(m.met, i) && m.stillMet(t, obs)) {
			metNow = append(metNow, i)
		}
	}

	first := make(map[int]time.Time, len(metNow))
	for _, i := range metNow {
		at, ok := m.firstObserved[i]
		if !ok {
			at = now
		}
		first[i] = at
	}
	for _, i := range metNow {
		m.condObserved[signals[m.o.Thresholds[i].Signal].condition] = now
	}
	var conds []v1.NodeConditionType
	for _, c := range conditionOrder {
		if at, ok := m.condObserved[c]; ok && now.Sub(at) < m.o.PressureTransitionPeriod {
			conds = append(conds, c)
		}
	}
	var pastGrace []int
	for _, i := range metNow {
		if d := now.Sub(first[i]); d >= m.o.Thresholds[i].GracePeriod {
			pastGrace = append(pastGrace, i)
		} else {
			m.log.Debug("eviction: threshold met, grace period not over", "threshold", m.o.Thresholds[i].String(), "for", d)
		}
	}
	// Act only on signals whose stats changed since the last pass.
	var act []int
	for _, i := range pastGrace {
		if statsUpdated(m.o.Thresholds[i].Signal, obs, m.lastObs) {
			act = append(act, i)
		}
	}
	m.firstObserved, m.met, m.lastObs = first, pastGrace, obs
	m.mu.Lock()
	m.conditions = conds
	m.mu.Unlock()

	if localStorage {
		if evicted, err := m.localStorageEviction(ctx, pods, stats); len(evicted) > 0 {
			return evicted, err
		}
	}
	if len(act) == 0 {
		m.log.Debug("eviction: no resource is starved")
		return nil, nil
	}

	// Memory first, then in configuration order.
	slices.SortStableFunc(act, func(a, b int) int {
		return cmpBool(isMemorySignal(m.o.Thresholds[a].Signal), isMemorySignal(m.o.Thresholds[b].Signal))
	})
	th := m.o.Thresholds[act[0]]
	res := signals[th.Signal].resource
	m.log.Info("eviction: threshold met, attempting to reclaim", "resource", res, "threshold", th.String())

	if m.reclaimNodeLevel(ctx, th.Signal, res) {
		m.log.Info("eviction: reduced the pressure without evicting pods", "resource", res)
		return nil, nil
	}
	if len(pods) == 0 {
		m.log.Warn("eviction: thresholds met, but no active pod to evict", "resource", res)
		return nil, nil
	}
	ranked := slices.Clone(pods)
	m.rank[th.Signal](ranked, stats)
	m.log.Info("eviction: must evict a pod", "resource", res, "ranked", podRefs(ranked))

	acted := make([]Threshold, len(act))
	for k, i := range act {
		acted[k] = m.o.Thresholds[i]
	}
	for _, pod := range ranked {
		grace := HardEvictionGracePeriodSeconds
		if !th.hard() {
			grace = m.o.MaxPodGracePeriodSeconds
			if pod.Spec.TerminationGracePeriodSeconds != nil {
				grace = min(grace, *pod.Spec.TerminationGracePeriodSeconds)
			}
		}
		msg := evictionMessage(res, pod, stats, acted, obs)
		cond := &v1.PodCondition{
			Type:               v1.DisruptionTarget,
			ObservedGeneration: pod.Generation,
			Status:             v1.ConditionTrue,
			Reason:             v1.PodReasonTerminationByKubelet,
			Message:            msg,
		}
		if tried, err := m.evict(ctx, pod, grace, msg, cond); tried {
			return []*v1.Pod{pod}, err
		}
	}
	m.log.Warn("eviction: unable to evict any pod", "resource", res)
	return nil, nil
}

// stillMet reports whether a threshold met before is not resolved yet: the
// signal is not back above its value plus its min reclaim.
func (m *Manager) stillMet(t Threshold, obs observations) bool {
	ok, _ := met(t, obs, true)
	return ok
}

func (m *Manager) updateNotifiers(summary *statsapi.Summary, now time.Time) {
	if len(m.o.Notifiers) == 0 || (!m.notifiersUpdated.IsZero() && now.Sub(m.notifiersUpdated) <= notifierRefreshInterval) {
		return
	}
	m.notifiersUpdated = now
	for _, n := range m.o.Notifiers {
		if err := n.UpdateThreshold(summary); err != nil {
			m.log.Warn("eviction: cannot update threshold notifier", "err", err)
		}
	}
}

// reclaimSteps gives the node-level reclaim of each disk signal: unused
// containers, then unused images. With a dedicated imagefs, nodefs pressure
// has none (images and writable layers are not there).
func (m *Manager) reclaimSteps(dedicatedImageFs bool) map[Signal][]reclaimStep {
	var steps []reclaimStep
	if gc := m.o.ContainerGC; gc != nil {
		steps = append(steps, func(ctx context.Context) error {
			if err := gc.DeleteUnusedContainers(ctx); err != nil {
				return fmt.Errorf("delete unused containers: %w", err)
			}
			return nil
		})
	}
	if gc := m.o.ImageGC; gc != nil {
		steps = append(steps, func(ctx context.Context) error {
			freed, err := gc.DeleteUnusedImages(ctx)
			if err != nil {
				return fmt.Errorf("delete unused images: %w", err)
			}
			m.log.Info("eviction: deleted unused images", "freedBytes", freed)
			return nil
		})
	}
	out := map[Signal][]reclaimStep{
		SignalImageFsAvailable:  steps,
		SignalImageFsInodesFree: steps,
	}
	if !dedicatedImageFs {
		out[SignalNodeFsAvailable] = steps
		out[SignalNodeFsInodesFree] = steps
	}
	return out
}

// reclaimNodeLevel runs the signal's reclaim steps and reports whether, on
// fresh stats, no threshold is met any more (min reclaims included), so no pod
// needs to go.
func (m *Manager) reclaimNodeLevel(ctx context.Context, sig Signal, res v1.ResourceName) bool {
	steps := m.reclaim[sig]
	if len(steps) == 0 {
		return false
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			m.log.Warn("eviction: node-level reclaim failed", "resource", res, "err", err)
		}
	}
	summary, err := m.o.Summary.Get(ctx)
	if err != nil || summary == nil {
		m.log.Error("eviction: cannot get stats summary after node-level reclaim", "err", err)
		return false
	}
	obs := observe(summary, m.o.NodeAllocatableMemory)
	m.logObservations("eviction: observations after node-level reclaim", obs)
	for _, t := range m.o.Thresholds {
		if ok, _ := met(t, obs, true); ok {
			return false
		}
	}
	return true
}

// evict evicts pod unless it is critical; tried reports whether it was asked to.
func (m *Manager) evict(ctx context.Context, pod *v1.Pod, grace int64, msg string, cond *v1.PodCondition) (tried bool, err error) {
	if m.o.IsCritical(pod) {
		m.log.Error("eviction: cannot evict a critical pod", "pod", podRef(pod))
		return false, nil
	}
	status := v1.PodStatus{Phase: v1.PodFailed, Reason: Reason, Message: msg}
	if cond != nil {
		status.Conditions = []v1.PodCondition{*cond}
	}
	m.log.Info("eviction: evicting pod", "pod", podRef(pod), "gracePeriodSeconds", grace, "message", msg)
	if err := m.o.Killer.EvictPod(ctx, pod, grace, status); err != nil {
		m.log.Error("eviction: pod eviction failed", "pod", podRef(pod), "err", err)
		return true, fmt.Errorf("eviction: evict pod %s: %w", podRef(pod), err)
	}
	return true, nil
}

func (m *Manager) logObservations(msg string, obs observations) {
	if !m.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	for _, sig := range slices.Sorted(maps.Keys(obs)) {
		o := obs[sig]
		m.log.Debug(msg, "signal", sig, "available", o.available.String(), "capacity", o.capacity.String(), "time", o.time)
	}
}

// conditionOrder is the order of pressure conditions everywhere.
var conditionOrder = []v1.NodeConditionType{v1.NodeMemoryPressure, v1.NodeDiskPressure, v1.NodePIDPressure}

func (m *Manager) hasCondition(c v1.NodeConditionType) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Contains(m.conditions, c)
}

// IsUnderMemoryPressure reports whether the node has the MemoryPressure condition.
func (m *Manager) IsUnderMemoryPressure() bool { return m.hasCondition(v1.NodeMemoryPressure) }

// IsUnderDiskPressure reports whether the node has the DiskPressure condition.
func (m *Manager) IsUnderDiskPressure() bool { return m.hasCondition(v1.NodeDiskPressure) }

// IsUnderPIDPressure reports whether the node has the PIDPressure condition.
func (m *Manager) IsUnderPIDPressure() bool { return m.hasCondition(v1.NodePIDPressure) }

// conditionText is the kubelet's reason and message of each pressure
// condition, for status False and True.
var conditionText = map[v1.NodeConditionType][2][2]string{
	v1.NodeMemoryPressure: {
		{"KubeletHasSufficientMemory", "kubelet has sufficient memory available"},
		{"KubeletHasInsufficientMemory", "kubelet has insufficient memory available"},
	},
	v1.NodeDiskPressure: {
		{"KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
		{"KubeletHasDiskPressure", "kubelet has disk pressure"},
	},
	v1.NodePIDPressure: {
		{"KubeletHasSufficientPID", "kubelet has sufficient PID available"},
		{"KubeletHasInsufficientPID", "kubelet has insufficient PID available"},
	},
}

// NodeConditions gives the MemoryPressure, DiskPressure and PIDPressure
// conditions for the node's status, with the kubelet's reasons and messages:
// LastHeartbeatTime is now, LastTransitionTime the time of the call that first
// reported the current status (as the kubelet's node status setters do).
func (m *Manager) NodeConditions(now time.Time) []v1.NodeCondition {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := metav1Time(now)
	out := make([]v1.NodeCondition, 0, len(conditionOrder))
	for _, c := range conditionOrder {
		status, text := v1.ConditionFalse, conditionText[c][0]
		if slices.Contains(m.conditions, c) {
			status, text = v1.ConditionTrue, conditionText[c][1]
		}
		nc, ok := m.reported[c]
		if !ok || nc.Status != status {
			nc = v1.NodeCondition{Type: c, Status: status, Reason: text[0], Message: text[1], LastTransitionTime: t}
		}
		nc.LastHeartbeatTime = t
		m.reported[c] = nc
		out = append(out, nc)
	}
	return out
}

// Admit decides whether a pod may start on the node, as the kubelet's eviction
// admission does: without pressure, or for a critical pod, yes; under memory
// pressure alone, unless the pod is BestEffort and does not tolerate the
// memory-pressure taint; under disk or PID pressure, no. A refusal gives
// Reason and the kubelet's message ("The node had condition: [DiskPressure]. ").
func (m *Manager) Admit(pod *v1.Pod) (ok bool, reason, message string) {
	m.mu.RLock()
	conds := slices.Clone(m.conditions)
	m.mu.RUnlock()
	if len(conds) == 0 || m.o.IsCritical(pod) {
		return true, "", ""
	}
	if len(conds) == 1 && conds[0] == v1.NodeMemoryPressure {
		if !isBestEffort(pod) || toleratesMemoryPressure(pod) {
			return true, "", ""
		}
	}
	m.log.Info("eviction: pod not admitted", "pod", podRef(pod), "conditions", conds)
	return false, Reason, fmt.Sprintf(nodeConditionMessageFmt, conds)
}

func podRef(pod *v1.Pod) string {
	if pod.Namespace == "" {
		return pod.Name
	}
	return pod.Namespace + "/" + pod.Name
}

func podRefs(pods []*v1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = podRef(p)
	}
	return out
}
