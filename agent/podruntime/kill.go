package podruntime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"
	"k8s.io/utils/clock"

	"github.com/nodekit-dev/nodekit/agent/timeline"
	"github.com/nodekit-dev/nodekit/pleg"
)

// KillPod stops every running container of the pod and then its sandboxes.
// Each container gets its grace period: the preStop hook runs within it, then
// StopContainer sends SIGTERM and SIGKILL when the rest of it is over (at least
// MinimumGracePeriod seconds). App containers stop first, in parallel; sidecars
// wait for them and stop in reverse order of the spec. pod may be nil (its spec
// is gone): what is needed is read back from the containers' annotations.
// gracePeriodOverride, if set, replaces every container's grace period.
func (m *Manager) KillPod(ctx context.Context, pod *v1.Pod, rs *pleg.PodStatus, gracePeriodOverride *int64) error {
	st := newPodState(rs)
	if m.timeline != nil && anyRunning(st) {
		uid := st.rs.ID
		if pod != nil {
			uid = pod.UID
		}
		ctx = m.withPod(ctx, uid)
		e := timeline.Entry{Kind: timeline.Sync, What: "stop pod"}
		if gracePeriodOverride != nil {
			e.Message = fmt.Sprintf("grace period %ds", *gracePeriodOverride)
		}
		timeline.FromContext(ctx).Record(e)
	}
	return m.killPod(ctx, pod, st, gracePeriodOverride)
}

func (m *Manager) killPod(ctx context.Context, pod *v1.Pod, st *podState, override *int64) error {
	var running []*runtimeapi.ContainerStatus
	for _, c := range st.all {
		switch c.GetState() {
		case runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_UNKNOWN:
			running = append(running, c)
		}
	}
	var order *termOrder
	if pod != nil && hasRestartableInit(pod) {
		names := make([]string, 0, len(running))
		for _, c := range running {
			names = append(names, containerName(c))
		}
		order = newTermOrder(pod, names, m.clock)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, c := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var spec *v1.Container
			if pod != nil {
				spec = containerSpec(pod, containerName(c))
			}
			if err := m.killContainer(ctx, pod, c, spec, "", ReasonStopping, override, order); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%w: %s: %v", ErrKillContainer, containerName(c), err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, s := range st.sandboxes {
		if err := m.rt.StopPodSandbox(ctx, s.GetId()); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("%w: %s: %v", ErrKillPodSandbox, s.GetId(), err))
		}
	}
	return errors.Join(errs...)
}

// KillContainer stops one container of the pod gracefully (preStop hook, then
// SIGTERM, SIGKILL at the end of the grace period). containerID may carry a
// "<runtime>://" prefix. reason chooses a probe's grace period for
// ReasonLivenessProbe and ReasonStartupProbe; gracePeriodOverride replaces the
// grace period. pod may be nil.
func (m *Manager) KillContainer(ctx context.Context, pod *v1.Pod, containerID, name string, reason KillReason, gracePeriodOverride *int64) error {
	id := bareID(containerID)
	resp, err := m.rt.ContainerStatus(ctx, id, false)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("status of container %s (%s): %w", name, id, err)
	}
	st := resp.GetStatus()
	if st == nil {
		st = &runtimeapi.ContainerStatus{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name}}
	}
	var spec *v1.Container
	if pod != nil {
		spec = containerSpec(pod, name)
		ctx = m.withPod(ctx, pod.UID)
	}
	return m.killContainer(ctx, pod, st, spec, "", reason, gracePeriodOverride, nil)
}

// killContainer runs the preStop hook within the grace period, waits for its
// turn (sidecars), then stops the container with what is left of the grace
// period (the kubelet's killContainer).
func (m *Manager) killContainer(ctx context.Context, pod *v1.Pod, st *runtimeapi.ContainerStatus, spec *v1.Container, message string, reason KillReason, override *int64, order *termOrder) error {
	name := containerName(st)
	if pod == nil || spec == nil {
		restoredPod, restored := restoredSpec(st)
		if pod == nil {
			pod = restoredPod
		}
		spec = restored
	}
	grace := gracePeriod(pod, spec, reason)
	if override != nil {
		grace = *override
	}
	if message == "" {
		message = "Stopping container " + name
	}
	m.log.Info("killing container", "pod", podRef(pod), "container", name, "id", st.GetId(),
		"reason", string(reason), "message", message, "gracePeriod", grace)
	m.note(pod, timeline.Entry{Kind: timeline.Sync, Container: name, What: fmt.Sprintf("killing container (grace period %ds)", grace),
		Reason: EventKilling, Message: message, Event: v1.EventTypeNormal})
	ctx = timeline.WithContainer(ctx, name)

	if spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil && grace > 0 {
		began, ok := m.preStopBegan(pod, name, st.GetId())
		switch {
		case ok && m.preStopDone(pod, name, st.GetId()):
			// An agent before this one ran the hook to its end and died
			// during the grace period: the hook does not run again, the stop
			// gets what is left of the grace period.
			m.log.Info("preStop hook already run before a restart; not running it again", "pod", podRef(pod), "container", name, "began", began)
			grace -= int64(m.clock.Since(began).Seconds())
		case ok:
			// It died while the hook ran, or before it could: run it again
			// (hooks are delivered at least once, as Kubernetes documents) in
			// what is left of the grace period, and at least the minimum: the
			// hook may never have reached the container, and a restart that
			// took longer than the grace period must not lose it. (The
			// kubelet, which keeps no record, gives it a whole new period.)
			grace -= int64(m.clock.Since(began).Seconds())
			grace = max(grace, MinimumGracePeriod)
			grace -= m.runPreStop(ctx, pod, spec, st.GetId(), grace)
			m.markPreStopDone(pod, name, st.GetId())
		default:
			m.markPreStop(pod, name, st.GetId())
			grace -= m.runPreStop(ctx, pod, spec, st.GetId(), grace)
			m.markPreStopDone(pod, name, st.GetId())
		}
	}
	if order != nil && grace > 0 {
		grace -= order.waitForTurn(name, grace)
	}
	grace = max(grace, MinimumGracePeriod)
	err := m.rt.StopContainer(ctx, st.GetId(), grace)
	if order != nil {
		order.terminated(name)
	}
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("stop container %s (%s) with grace period %ds: %w", name, st.GetId(), grace, err)
	}
	return nil
}

// runPreStop runs the preStop hook for at most grace seconds and returns the
// whole seconds it took.
func (m *Manager) runPreStop(ctx context.Context, pod *v1.Pod, c *v1.Container, id string, grace int64) int64 {
	start := m.clock.Now()
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	podIP := ""
	if h := c.Lifecycle.PreStop.HTTPGet; h != nil && h.Host == "" {
		if ips := m.podIPs(hctx, pod); len(ips) > 0 {
			podIP = ips[0]
		}
	}
	go func() {
		defer close(done)
		msg, err := m.runHook(hctx, pod, c, id, podIP, c.Lifecycle.PreStop)
		took := m.clock.Since(start)
		switch {
		case hctx.Err() != nil && err != nil:
			// Cut short at the end of the grace period: recorded below.
		case err != nil:
			m.log.Warn("preStop hook failed", "pod", podRef(pod), "container", c.Name, "err", err, "message", msg)
			m.note(pod, timeline.Entry{Kind: timeline.Hook, Container: c.Name, What: "preStop hook failed", Reason: EventFailedPreStop,
				Message: "PreStopHook failed", Error: msg, Took: took, Event: v1.EventTypeWarning})
		default:
			m.note(pod, timeline.Entry{Kind: timeline.Hook, Container: c.Name, What: "preStop hook succeeded", Message: msg, Took: took})
		}
	}()
	t := m.clock.NewTimer(time.Duration(grace) * time.Second)
	defer t.Stop()
	select {
	case <-t.C():
		m.log.Info("preStop hook not completed in grace period", "pod", podRef(pod), "container", c.Name, "gracePeriod", grace)
		m.note(pod, timeline.Entry{Kind: timeline.Hook, Container: c.Name, What: "preStop hook not completed in the grace period",
			Took: time.Duration(grace) * time.Second})
	case <-done:
	}
	return int64(m.clock.Since(start).Seconds())
}

// podIPs returns the IPs of the pod's ready sandbox, for httpGet hooks run while
// stopping.
func (m *Manager) podIPs(ctx context.Context, pod *v1.Pod) []string {
	if pod.Spec.HostNetwork {
		return m.hostIPs
	}
	sbs, err := m.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{kubetypes.KubernetesPodUIDLabel: string(pod.UID)},
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	})
	if err != nil || len(sbs) == 0 {
		return nil
	}
	resp, err := m.rt.PodSandboxStatus(ctx, sbs[0].GetId(), false)
	if err != nil {
		return nil
	}
	return sandboxIPs(resp.GetStatus())
}

func sandboxIPs(s *runtimeapi.PodSandboxStatus) []string {
	n := s.GetNetwork()
	if n == nil || n.GetIp() == "" {
		return nil
	}
	ips := []string{n.GetIp()}
	for _, ip := range n.GetAdditionalIps() {
		ips = append(ips, ip.GetIp())
	}
	return ips
}

// gracePeriod is a container's termination grace period in seconds: the pod's
// deletion grace period if set, else the probe's for probe kills, else the
// pod's terminationGracePeriodSeconds (default 30).
func gracePeriod(pod *v1.Pod, c *v1.Container, reason KillReason) int64 {
	if pod.DeletionGracePeriodSeconds != nil {
		return *pod.DeletionGracePeriodSeconds
	}
	switch reason {
	case ReasonLivenessProbe:
		if c.LivenessProbe != nil && c.LivenessProbe.TerminationGracePeriodSeconds != nil {
			return *c.LivenessProbe.TerminationGracePeriodSeconds
		}
	case ReasonStartupProbe:
		if c.StartupProbe != nil && c.StartupProbe.TerminationGracePeriodSeconds != nil {
			return *c.StartupProbe.TerminationGracePeriodSeconds
		}
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return DefaultTerminationGracePeriod
}

// termOrder makes sidecars stop after the app containers, and each sidecar
// after the sidecars declared after it (the kubelet's terminationOrdering).
type termOrder struct {
	clock   clock.Clock
	mu      sync.Mutex
	done    map[string]chan struct{} // closed when the container stopped
	prereqs map[string][]chan struct{}
}

func newTermOrder(pod *v1.Pod, running []string, c clock.Clock) *termOrder {
	o := &termOrder{clock: c, done: map[string]chan struct{}{}, prereqs: map[string][]chan struct{}{}}
	isRunning := map[string]bool{}
	for _, n := range running {
		isRunning[n] = true
	}
	newCh := func(name string) chan struct{} {
		ch := make(chan struct{})
		if !isRunning[name] {
			close(ch)
		}
		o.done[name] = ch
		return ch
	}
	var apps []chan struct{}
	for i := range pod.Spec.Containers {
		apps = append(apps, newCh(pod.Spec.Containers[i].Name))
	}
	var later chan struct{} // the sidecar declared after the current one
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		c := &pod.Spec.InitContainers[i]
		ch := newCh(c.Name)
		if !isRestartableInit(c) {
			continue
		}
		o.prereqs[c.Name] = append(o.prereqs[c.Name], apps...)
		if later != nil {
			o.prereqs[c.Name] = append(o.prereqs[c.Name], later)
		}
		later = ch
	}
	return o
}

// waitForTurn waits until the containers name must outlive have stopped, or
// grace seconds passed; it returns the whole seconds waited.
func (o *termOrder) waitForTurn(name string, grace int64) int64 {
	if grace <= 0 || len(o.prereqs[name]) == 0 {
		return 0
	}
	start := o.clock.Now()
	t := o.clock.NewTimer(time.Duration(grace) * time.Second)
	defer t.Stop()
	for _, ch := range o.prereqs[name] {
		select {
		case <-ch:
		case <-t.C():
			return int64(o.clock.Since(start).Seconds())
		}
	}
	return int64(o.clock.Since(start).Seconds())
}

// terminated records that name stopped.
func (o *termOrder) terminated(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ch, ok := o.done[name]; ok {
		select {
		case <-ch:
		default:
			close(ch)
		}
		delete(o.done, name)
	}
}

// preStopMarker is the file recording that the preStop hook of container id
// began (and, with ".done" appended, that it ended), in the container's
// directory of the pod directory: an agent that restarts during the
// termination does not run a hook that ended again, and runs one that only
// began again (at least once).
func (m *Manager) preStopMarker(pod *v1.Pod, name, id string) string {
	if pod == nil || pod.UID == "" || name == "" || id == "" {
		return ""
	}
	return filepath.Join(m.podDir(pod.UID), "containers", name, "prestop-"+id)
}

// preStopBegan returns when the hook of container id began, if it did.
func (m *Manager) preStopBegan(pod *v1.Pod, name, id string) (time.Time, bool) {
	p := m.preStopMarker(pod, name, id)
	if p == "" {
		return time.Time{}, false
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(data)))
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// preStopDone reports whether the hook of container id ran to its end.
func (m *Manager) preStopDone(pod *v1.Pod, name, id string) bool {
	p := m.preStopMarker(pod, name, id)
	if p == "" {
		return false
	}
	_, err := os.Stat(p + ".done")
	return err == nil
}

// markPreStopDone records that the hook of container id ended (whatever its
// result: a failed hook is not retried either).
func (m *Manager) markPreStopDone(pod *v1.Pod, name, id string) {
	p := m.preStopMarker(pod, name, id)
	if p == "" {
		return
	}
	if _, err := os.Stat(filepath.Dir(p)); err != nil {
		return
	}
	if err := os.WriteFile(p+".done", nil, 0o600); err != nil {
		m.log.Warn("cannot record the preStop hook's end", "pod", podRef(pod), "container", name, "err", err)
	}
}

// markPreStop records that the hook of container id begins. The container's
// directory must exist (it is made with the container): a pod directory
// already cleaned up is not made again.
func (m *Manager) markPreStop(pod *v1.Pod, name, id string) {
	p := m.preStopMarker(pod, name, id)
	if p == "" {
		return
	}
	if _, err := os.Stat(filepath.Dir(p)); err != nil {
		return
	}
	if err := os.WriteFile(p, []byte(m.clock.Now().Format(time.RFC3339Nano)+"\n"), 0o600); err != nil {
		m.log.Warn("cannot record the preStop hook's start", "pod", podRef(pod), "container", name, "err", err)
	}
}
