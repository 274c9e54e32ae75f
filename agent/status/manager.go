package status

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/nodekit-dev/nodekit/internal/containerid"
	"github.com/nodekit-dev/nodekit/internal/restartpolicy"
)

// Sink receives pod statuses from a Manager. Put is called from the Manager's
// goroutines, for one pod never concurrently and with increasing versions; a
// Put that fails is retried (with the newest status by then).
type Sink interface {
	Put(ctx context.Context, pod *v1.Pod, status v1.PodStatus, version uint64) error
}

// SinkDeleter is implemented by sinks that forget pods: the Manager calls Delete
// (in order with the pod's Puts) after RemoveOrphanedStatuses dropped the pod.
type SinkDeleter interface {
	Delete(ctx context.Context, uid types.UID) error
}

// Metrics observes the Manager's writes to its Sink.
type Metrics interface {
	// ObserveSync records one Put: how long the pod's oldest unwritten change
	// had waited, and the Put's error.
	ObserveSync(wait time.Duration, err error)
}

// Manager is the source of truth for the agent's pod statuses.
type Manager interface {
	// Start begins writing statuses to the sink; before Start they are only
	// kept. Stop ends the writers and waits for them.
	Start()
	Stop()
	// GetPodStatus returns the pod's current status (a copy).
	GetPodStatus(uid types.UID) (v1.PodStatus, bool)
	// SetPodStatus records the pod's newest status. The version grows only when
	// a kubelet-owned part changed; container statuses may not leave a
	// terminated state the restart policy forbids leaving (the update is then
	// refused) and a terminal phase is never left.
	SetPodStatus(pod *v1.Pod, status v1.PodStatus)
	// SetContainerReadiness and SetContainerStartup set the Ready or Started
	// field of the container with that ID ("<runtime>://<id>" or the bare CRI
	// id) and regenerate the Ready and ContainersReady conditions.
	SetContainerReadiness(uid types.UID, containerID string, ready bool)
	SetContainerStartup(uid types.UID, containerID string, started bool)
	// TerminatePod marks every container that has not terminated as
	// terminated (ContainerStatusUnknown, exit code 137) and moves the pod to
	// a terminal phase: it stays Succeeded or Failed, otherwise becomes Failed.
	TerminatePod(pod *v1.Pod)
	// RemoveOrphanedStatuses forgets every pod not in podUIDs.
	RemoveOrphanedStatuses(podUIDs map[types.UID]bool)
	// Version is the pod's status version, 0 when the pod is unknown.
	Version(uid types.UID) uint64
	// Rewrite writes the pod's current status to the sink again, though it
	// did not change: the sink's copy is gone or someone else changed it (a
	// new mirror pod; a controller marked the pod not ready while the node
	// was unreachable).
	Rewrite(uid types.UID)
}

// ManagerOption configures a Manager.
type ManagerOption func(*manager)

// WithMetrics makes the Manager report its sink writes to m.
func WithMetrics(m Metrics) ManagerOption { return func(mg *manager) { mg.metrics = m } }

// ChangeFunc is told of each new version of a pod's status and the one it
// replaces (the pod's own status for the first); timeline.Recorder's
// StatusChanged is one.
type ChangeFunc func(pod *v1.Pod, old, status *v1.PodStatus)

// WithChanges makes the Manager call f with every new version of a pod's
// status, as it is stored: in order, under the Manager's lock (f must be
// quick, must not keep the statuses and must not call the Manager).
func WithChanges(f ChangeFunc) ManagerOption { return func(mg *manager) { mg.changed = f } }

// Retry back-off of failed sink writes.
const (
	retryInitial = 200 * time.Millisecond
	retryMax     = 10 * time.Second
)

type entry struct {
	pod          *v1.Pod
	status       v1.PodStatus
	version      uint64
	pendingSince time.Time // first change not yet written
	written      uint64    // newest version the sink accepted
	writing      bool      // a writer goroutine owns this pod's sink writes
	removed      bool      // orphaned: delete from the sink, then forget
}

type manager struct {
	sink    Sink
	clock   clock.WithTicker
	log     *slog.Logger
	metrics Metrics
	changed ChangeFunc

	mu      sync.Mutex
	pods    map[types.UID]*entry
	started bool
	stopped bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewManager returns a Manager writing to sink (nil: statuses are only kept).
// clk defaults to the real clock, logger to slog.Default().
func NewManager(sink Sink, clk clock.WithTicker, logger *slog.Logger, opts ...ManagerOption) Manager {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &manager{sink: sink, clock: clk, log: logger, pods: map[types.UID]*entry{}, ctx: ctx, cancel: cancel}
	for _, o := range opts {
		o(m)
	}
	return m
}

func (m *manager) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.stopped {
		return
	}
	m.started = true
	for uid := range m.pods {
		m.kick(uid)
	}
}

func (m *manager) Stop() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

func (m *manager) GetPodStatus(uid types.UID) (v1.PodStatus, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.pods[uid]
	if !ok || e.removed {
		return v1.PodStatus{}, false
	}
	return *e.status.DeepCopy(), true
}

func (m *manager) Version(uid types.UID) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.pods[uid]; ok && !e.removed {
		return e.version
	}
	return 0
}

func (m *manager) Rewrite(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.pods[uid]
	if e == nil || e.removed {
		return
	}
	e.written = 0
	if e.pendingSince.IsZero() {
		e.pendingSince = m.clock.Now()
	}
	if m.started {
		m.kick(uid)
	}
}

func (m *manager) SetPodStatus(pod *v1.Pod, status v1.PodStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.update(pod, *status.DeepCopy(), pod.DeletionTimestamp != nil)
}

func (m *manager) SetContainerReadiness(uid types.UID, containerID string, ready bool) {
	m.setContainer(uid, containerID, "readiness", func(cs *v1.ContainerStatus) bool {
		if cs.Ready == ready {
			return false
		}
		cs.Ready = ready
		return true
	})
}

func (m *manager) SetContainerStartup(uid types.UID, containerID string, started bool) {
	m.setContainer(uid, containerID, "startup", func(cs *v1.ContainerStatus) bool {
		if cs.Started != nil && *cs.Started == started {
			return false
		}
		cs.Started = &started
		return true
	})
}

func (m *manager) setContainer(uid types.UID, containerID, what string, set func(*v1.ContainerStatus) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.pods[uid]
	if !ok || e.removed {
		m.log.Debug("container "+what+" changed before the pod's status was set", "podUID", uid, "containerID", containerID)
		return
	}
	status := *e.status.DeepCopy()
	cs := findByContainerID(&status, containerID)
	if cs == nil {
		m.log.Debug("container "+what+" changed for an unknown container", "podUID", uid, "containerID", containerID)
		return
	}
	if !set(cs) {
		return
	}
	all := append(append([]v1.ContainerStatus{}, status.InitContainerStatuses...), status.ContainerStatuses...)
	replaceCondition(&status, podReadyCondition(e.pod, status.Conditions, all, status.Phase))
	replaceCondition(&status, containersReadyCondition(e.pod, all, status.Phase))
	m.update(e.pod, status, false)
}

func findByContainerID(s *v1.PodStatus, id string) *v1.ContainerStatus {
	match := func(cid string) bool {
		if cid == "" {
			return false
		}
		if cid == id {
			return true
		}
		return containerid.CRIID(cid) == id
	}
	for i := range s.ContainerStatuses {
		if match(s.ContainerStatuses[i].ContainerID) {
			return &s.ContainerStatuses[i]
		}
	}
	for i := range s.InitContainerStatuses {
		if match(s.InitContainerStatuses[i].ContainerID) {
			return &s.InitContainerStatuses[i]
		}
	}
	return nil
}

func replaceCondition(s *v1.PodStatus, c v1.PodCondition) {
	if i, _ := findCondition(s.Conditions, c.Type); i >= 0 {
		s.Conditions[i] = c
		return
	}
	s.Conditions = append(s.Conditions, c)
}

func (m *manager) TerminatePod(pod *v1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := pod.Status
	if e, ok := m.pods[pod.UID]; ok && !e.removed {
		old = e.status
	}
	status := *old.DeepCopy()
	unknown := func() v1.ContainerState {
		return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
			Reason:   ReasonContainerStatusUnknown,
			Message:  "The container could not be located when the pod was terminated",
			ExitCode: 137,
		}}
	}
	// Once the pod initialized, a missing app container status is a failure.
	if podInitialized(pod, &status) {
		for i := range status.ContainerStatuses {
			if status.ContainerStatuses[i].State.Terminated == nil {
				status.ContainerStatuses[i].State = unknown()
			}
		}
	}
	// Init containers up to the last one that ever started are failures too.
	for i := range startedPrefix(status.InitContainerStatuses) {
		if status.InitContainerStatuses[i].State.Terminated == nil {
			status.InitContainerStatuses[i].State = unknown()
		}
	}
	// Unlike upstream (which skips static pods, kubernetes#116484), every pod
	// ends in a terminal phase: here all pods are static.
	if !isTerminal(status.Phase) {
		status.Phase = v1.PodFailed
	}
	all := append(append([]v1.ContainerStatus{}, status.InitContainerStatuses...), status.ContainerStatuses...)
	replaceCondition(&status, podReadyCondition(pod, status.Conditions, all, status.Phase))
	replaceCondition(&status, containersReadyCondition(pod, all, status.Phase))
	m.update(pod, status, true)
}

// podInitialized reports whether the pod shows evidence of having initialized
// (status manager's hasPodInitialized, judged on the status we hold).
func podInitialized(pod *v1.Pod, s *v1.PodStatus) bool {
	if len(pod.Spec.InitContainers) == 0 {
		return true
	}
	for _, cs := range s.ContainerStatuses {
		if cs.LastTerminationState.Terminated != nil || cs.State.Waiting == nil {
			return true
		}
	}
	l := len(s.InitContainerStatuses)
	if l == 0 {
		return false
	}
	last := s.InitContainerStatuses[l-1]
	spec := specByName(pod.Spec.InitContainers, last.Name)
	if spec == nil {
		return false
	}
	if isSidecar(spec) {
		return last.State.Running != nil && last.Started != nil && *last.Started
	}
	if t := last.LastTerminationState.Terminated; t != nil && t.ExitCode == 0 {
		return true
	}
	if t := last.State.Terminated; t != nil && t.ExitCode == 0 {
		return true
	}
	return false
}

// startedPrefix returns the statuses up to the last one that left the waiting
// state (or has a previous termination); at least the first.
func startedPrefix(cs []v1.ContainerStatus) []v1.ContainerStatus {
	for i := len(cs) - 1; i >= 0; i-- {
		if cs[i].State.Waiting == nil || cs[i].LastTerminationState.Terminated != nil {
			return cs[:i+1]
		}
	}
	if len(cs) > 0 {
		return cs[:1]
	}
	return nil
}

func (m *manager) RemoveOrphanedStatuses(podUIDs map[types.UID]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, e := range m.pods {
		if podUIDs[uid] || e.removed {
			continue
		}
		m.log.Debug("removing orphaned pod status", "podUID", uid)
		if !m.started || m.sink == nil {
			delete(m.pods, uid) // nothing was written: nothing to delete
			continue
		}
		e.removed = true
		m.kick(uid)
	}
}

// checkTransitions refuses container statuses leaving a terminated state the
// restart policy does not allow leaving (status manager's
// checkContainerStateTransition).
func checkTransitions(old, s *v1.PodStatus, spec *v1.PodSpec) error {
	if spec.RestartPolicy == v1.RestartPolicyAlways {
		return nil
	}
	stuck := func(o v1.ContainerStatus) bool {
		t := o.State.Terminated
		if t == nil || (t.ExitCode != 0 && spec.RestartPolicy == v1.RestartPolicyOnFailure) {
			return false
		}
		for i := range spec.Containers {
			if c := &spec.Containers[i]; c.Name == o.Name && restartpolicy.ShouldRestart(c, spec, t.ExitCode) {
				return false // its own policy or rules restart it
			}
		}
		return true
	}
	for _, o := range old.ContainerStatuses {
		if !stuck(o) {
			continue
		}
		if n, ok := findStatus(s.ContainerStatuses, o.Name); ok && n.State.Terminated == nil {
			return fmt.Errorf("terminated container %q attempted illegal transition to non-terminated state", o.Name)
		}
	}
	for _, o := range old.InitContainerStatuses {
		if c := specByName(spec.InitContainers, o.Name); c == nil || isSidecar(c) || !stuck(o) {
			continue
		}
		if n, ok := findStatus(s.InitContainerStatuses, o.Name); ok && n.State.Terminated == nil {
			return fmt.Errorf("terminated init container %q attempted illegal transition to non-terminated state", o.Name)
		}
	}
	return nil
}

// update stores status as the pod's newest one (status manager's
// updateStatusInternal). m.mu must be held.
func (m *manager) update(pod *v1.Pod, status v1.PodStatus, force bool) {
	e, cached := m.pods[pod.UID]
	if cached && e.removed {
		// The pod came back before its deletion reached the sink: resume it,
		// keeping its versions monotonic.
		e.removed = false
		cached = false
		e.status = v1.PodStatus{}
	}
	old := pod.Status
	if cached {
		old = e.status
	}

	if err := checkTransitions(&old, &status, &pod.Spec); err != nil {
		m.log.Error("pod status update refused", "pod", pod.Namespace+"/"+pod.Name, "podUID", pod.UID, "err", err)
		return
	}
	if isTerminal(old.Phase) && status.Phase != old.Phase {
		m.log.Warn("pod attempted to leave a terminal phase; kept", "pod", pod.Namespace+"/"+pod.Name, "podUID", pod.UID, "phase", old.Phase, "attempted", status.Phase)
		status.Phase, status.Reason, status.Message = old.Phase, old.Reason, old.Message
	}

	now := m.clock.Now()
	for _, t := range kubeletConditions {
		setTransitionTime(&status, &old, t, now)
	}
	setTransitionTime(&status, &old, v1.DisruptionTarget, now)
	if old.StartTime != nil && !old.StartTime.IsZero() {
		status.StartTime = old.StartTime.DeepCopy()
	} else if status.StartTime == nil || status.StartTime.IsZero() {
		t := metav1.NewTime(now)
		status.StartTime = &t
	}
	normalize(pod, &status)

	if cached && !force && kubeletEqual(&e.status, &status) {
		return
	}
	if m.changed != nil {
		m.changed(pod, &old, &status)
	}
	if e == nil {
		e = &entry{}
		m.pods[pod.UID] = e
	}
	e.pod = pod
	e.status = status
	e.version++
	if e.pendingSince.IsZero() {
		e.pendingSince = now
	}
	if m.started {
		m.kick(pod.UID)
	}
}

// kubeletEqual reports whether two statuses are equal in what the kubelet owns:
// conditions compare by status, reason and message only (probe and transition
// times do not count), everything else exactly (isPodStatusByKubeletEqual).
func kubeletEqual(old, s *v1.PodStatus) bool {
	oc := old.DeepCopy()
	for _, c := range s.Conditions {
		if !isKubeletCondition(c.Type) && !isSharedCondition(c.Type) {
			continue
		}
		_, o := findCondition(oc.Conditions, c.Type)
		if o == nil || o.Status != c.Status || o.Reason != c.Reason || o.Message != c.Message {
			return false
		}
	}
	oc.Conditions = s.Conditions
	return equality.Semantic.DeepEqual(oc, s)
}

// normalize truncates timestamps to seconds (what the API server keeps) and
// caps termination messages to the pod's share (status manager's
// normalizeStatus); container statuses keep their order.
func normalize(pod *v1.Pod, s *v1.PodStatus) {
	perContainer := maxPodTerminationMessage
	if n := len(pod.Spec.Containers) + len(pod.Spec.InitContainers); n > 0 {
		perContainer /= n
	}
	ts := func(t *metav1.Time) { *t = t.Rfc3339Copy() }
	state := func(c *v1.ContainerState) {
		if c.Running != nil {
			ts(&c.Running.StartedAt)
		}
		if c.Terminated != nil {
			ts(&c.Terminated.StartedAt)
			ts(&c.Terminated.FinishedAt)
			if len(c.Terminated.Message) > perContainer {
				c.Terminated.Message = c.Terminated.Message[:perContainer]
			}
		}
	}
	if s.StartTime != nil {
		ts(s.StartTime)
	}
	for i := range s.Conditions {
		ts(&s.Conditions[i].LastProbeTime)
		ts(&s.Conditions[i].LastTransitionTime)
	}
	for _, list := range [][]v1.ContainerStatus{s.ContainerStatuses, s.InitContainerStatuses} {
		for i := range list {
			state(&list[i].State)
			state(&list[i].LastTerminationState)
		}
	}
}

// kick makes sure a writer goroutine handles the pod. m.mu must be held.
func (m *manager) kick(uid types.UID) {
	e := m.pods[uid]
	if e == nil || e.writing || m.stopped || m.sink == nil {
		return
	}
	if !e.removed && e.written >= e.version {
		return
	}
	e.writing = true
	m.wg.Add(1)
	go m.write(uid, e)
}

// write delivers the pod's newest status to the sink until the sink holds it,
// one Put at a time, retrying with back-off.
func (m *manager) write(uid types.UID, e *entry) {
	defer m.wg.Done()
	backoff := retryInitial
	for {
		m.mu.Lock()
		if m.stopped || m.pods[uid] != e {
			e.writing = false
			m.mu.Unlock()
			return
		}
		var err error
		if e.removed {
			m.mu.Unlock()
			if d, ok := m.sink.(SinkDeleter); ok {
				err = d.Delete(m.ctx, uid)
			}
			m.mu.Lock()
			if err == nil && e.removed {
				delete(m.pods, uid)
				e.writing = false
				m.mu.Unlock()
				return
			}
			m.mu.Unlock()
		} else {
			if e.written >= e.version {
				e.writing = false
				m.mu.Unlock()
				return
			}
			pod, status, version, since := e.pod, *e.status.DeepCopy(), e.version, e.pendingSince
			m.mu.Unlock()

			err = m.sink.Put(m.ctx, pod, status, version)
			if m.metrics != nil {
				m.metrics.ObserveSync(m.clock.Since(since), err)
			}
			if err == nil {
				m.mu.Lock()
				if version > e.written {
					e.written = version
				}
				if e.written >= e.version {
					e.pendingSince = time.Time{}
				}
				m.mu.Unlock()
				backoff = retryInitial
				continue
			}
		}
		if err == nil {
			continue // resurrected while being deleted: write it again
		}
		m.log.Warn("writing pod status failed; will retry", "podUID", uid, "retryIn", backoff, "err", err)
		select {
		case <-m.ctx.Done():
		case <-m.clock.After(backoff):
		}
		backoff = min(backoff*2, retryMax)
	}
}
