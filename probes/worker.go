package probes

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodekit-dev/nodekit/internal/restartpolicy"
)

// worker probes one container of a pod with one probe type, every period,
// until it is stopped or the pod is done. It finds the container (and
// notices when it is replaced) through the manager's StatusProvider.
type worker struct {
	m         *manager
	key       probeKey
	pod       *v1.Pod
	container v1.Container
	spec      *v1.Probe // with defaults
	initial   Result    // the result of a container before its first verdict
	labels    MetricLabels

	ctx     context.Context // canceled to stop the worker
	cancel  context.CancelFunc
	trigger chan struct{} // asks for a probe now

	// Owned by the worker's goroutine.
	containerID string // as in the pod status: `<runtime>://<id>`
	lastResult  Result // the last probe's result
	resultRun   int    // how many probes in a row returned lastResult
	onHold      bool   // verdict given: wait for a new container
	published   Result // the result last published for containerID
}

func newWorker(m *manager, key probeKey, pod *v1.Pod, c v1.Container) *worker {
	ctx, cancel := context.WithCancel(m.ctx)
	w := &worker{
		m:         m,
		key:       key,
		pod:       pod,
		container: c,
		spec:      withDefaults(probeSpec(key.probeType, &c)),
		ctx:       ctx,
		cancel:    cancel,
		trigger:   make(chan struct{}, 1),
		labels: MetricLabels{
			ProbeType: key.probeType.String(),
			Container: c.Name,
			Pod:       pod.Name,
			Namespace: pod.Namespace,
			PodUID:    pod.UID,
		},
	}
	switch key.probeType {
	case Readiness:
		w.initial = Failure
	case Liveness:
		w.initial = Success
	case Startup:
		w.initial = Unknown
	}
	return w
}

func (w *worker) run() {
	defer w.m.wg.Done()
	defer w.cleanup()

	period := time.Duration(w.spec.PeriodSeconds) * time.Second
	// Workers started right after the manager (pods adopted after a restart)
	// would all probe at once: spread their first probes over a period.
	if period > w.m.clock.Since(w.m.start) {
		if d := w.m.jitter(period); d > 0 {
			t := w.m.clock.NewTimer(d)
			select {
			case <-w.ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
	}

	ticker := w.m.clock.NewTicker(period)
	defer func() { ticker.Stop() }()
	for {
		keepGoing := w.doProbe()
		if w.m.probed != nil {
			w.m.probed(w, keepGoing)
		}
		if !keepGoing || w.ctx.Err() != nil {
			return
		}
		select {
		case <-w.ctx.Done():
			return
		case <-ticker.C():
		case <-w.trigger:
			// Next periodic probe one period after this one.
			ticker.Stop()
			ticker = w.m.clock.NewTicker(period)
		}
	}
}

func (w *worker) cleanup() {
	w.cancel()
	if w.containerID != "" {
		w.m.results[w.key.probeType].remove(criID(w.containerID), w)
	}
	w.m.removeWorker(w)
	if w.m.opts.Metrics != nil {
		w.m.opts.Metrics.Forget(w.labels)
	}
}

// setResult publishes r for the current container if it changed, and says
// whether it did.
func (w *worker) setResult(r Result) bool {
	w.published = r
	if !w.m.results[w.key.probeType].set(criID(w.containerID), r, w) {
		return false
	}
	u := Update{
		ContainerID:   w.containerID,
		PodUID:        w.pod.UID,
		Result:        r,
		ContainerName: w.container.Name,
	}
	if w.key.probeType != Readiness {
		u.GracePeriodSeconds = KillGracePeriod(w.pod, &w.container, w.key.probeType)
	}
	select {
	case w.m.updates[w.key.probeType] <- u:
	case <-w.ctx.Done():
	}
	return true
}

// findStatus finds the status of the named container among the app
// containers, then the init containers.
func findStatus(s *v1.PodStatus, name string) (*v1.ContainerStatus, bool) {
	for _, list := range [][]v1.ContainerStatus{s.ContainerStatuses, s.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name && list[i].ContainerID != "" {
				return &list[i], true
			}
		}
	}
	return nil, false
}

// doProbe probes the container once, if it should be, and records the
// result. It says whether the worker should go on.
func (w *worker) doProbe() (keepGoing bool) {
	defer func() {
		if p := recover(); p != nil {
			w.m.log.Error("probe worker panicked", "pod", w.podRef(), "container", w.container.Name,
				"probeType", w.key.probeType, "panic", fmt.Sprint(p))
			keepGoing = true
		}
	}()

	status, ok := w.m.opts.Status.GetPodStatus(w.pod.UID)
	if !ok {
		return true // not created yet, or already gone
	}
	if status.Phase == v1.PodFailed || status.Phase == v1.PodSucceeded {
		return false
	}
	c, ok := findStatus(&status, w.container.Name)
	if !ok {
		return true // container not created yet
	}

	if w.containerID != c.ContainerID {
		// A new container: forget the old one, start from the initial result.
		if w.containerID != "" {
			w.m.results[w.key.probeType].remove(criID(w.containerID), w)
		}
		w.containerID = c.ContainerID
		w.lastResult, w.resultRun = Unknown, 0
		w.onHold = false
		w.setResult(w.initial)
	}
	if w.onHold {
		return true
	}

	if c.State.Running == nil {
		w.setResult(Failure)
		// Go on only if the container may be restarted.
		return c.State.Terminated == nil ||
			restartpolicy.ShouldRestart(&w.container, &w.pod.Spec, c.State.Terminated.ExitCode)
	}

	if w.pod.DeletionTimestamp != nil && (w.key.probeType == Liveness || w.key.probeType == Startup) {
		// The pod is being deleted: a quiet end.
		w.setResult(Success)
		return false
	}

	// No probes during the initial delay (compared as durations: the
	// kubelet's int32 seconds overflow for a zero start time).
	if w.m.clock.Since(c.State.Running.StartedAt.Time) < time.Duration(w.spec.InitialDelaySeconds)*time.Second {
		return true
	}

	if w.started(c) {
		if w.key.probeType == Startup {
			return true // startup done; kept for the next container
		}
	} else if w.key.probeType != Startup {
		return true // liveness and readiness wait for startup
	}

	begin := w.m.clock.Now()
	podIP := status.PodIP
	result, out, err := w.m.runProbe(w.ctx, probeTarget{
		probe:       w.spec,
		pod:         w.pod,
		probeType:   w.key.probeType,
		container:   &w.container,
		containerID: criID(w.containerID),
		podIP:       podIP,
	})
	if w.ctx.Err() != nil {
		return false // stopped while probing: the result means nothing
	}
	if err != nil {
		w.m.log.Debug("probe errored", "probeType", w.key.probeType, "pod", w.podRef(),
			"container", w.container.Name, "err", err)
		return true
	}
	if result == Failure {
		w.m.log.Debug("probe failed", "probeType", w.key.probeType, "pod", w.podRef(),
			"container", w.container.Name, "output", out)
	}
	if mt := w.m.opts.Metrics; mt != nil {
		mt.ProbeCompleted(w.labels, result.metricLabel())
		if result != Failure {
			mt.ProbeDuration(w.labels, w.m.clock.Since(begin))
		}
	}

	if w.lastResult == result {
		w.resultRun++
	} else {
		w.lastResult, w.resultRun = result, 1
	}
	if (result == Failure && w.resultRun < int(w.spec.FailureThreshold)) ||
		(result == Success && w.resultRun < int(w.spec.SuccessThreshold)) {
		return true // below threshold: the published result stands
	}
	if prev := w.published; w.setResult(result) {
		w.m.log.Info("probe result changed", "probeType", w.key.probeType, "pod", w.podRef(),
			"container", w.container.Name, "containerID", w.containerID, "result", result, "output", truncate(out, 256))
		if j := w.m.opts.Journal; j != nil {
			j.Note(Note{PodUID: w.pod.UID, Container: w.container.Name, Type: w.key.probeType,
				What:    fmt.Sprintf("%s probe %s -> %s", lower(w.key.probeType), prev, result),
				Message: out, Took: w.m.clock.Since(begin)})
		}
	}

	if (w.key.probeType == Liveness && result == Failure) || w.key.probeType == Startup {
		// A liveness failure means the container will be restarted, and a
		// startup verdict is final for this container: hold until a new one.
		w.onHold = true
		w.resultRun = 0
	}
	return true
}

// started says whether liveness and readiness may run: the status says the
// container started, or it has no startup probe, or its startup probe
// succeeded.
func (w *worker) started(c *v1.ContainerStatus) bool {
	if c.Started != nil && *c.Started {
		return true
	}
	if w.container.StartupProbe == nil {
		return true
	}
	r, ok := w.m.results[Startup].get(criID(c.ContainerID))
	return ok && r == Success
}

func (w *worker) podRef() string { return w.pod.Namespace + "/" + w.pod.Name }

// truncate shortens s to at most n bytes for a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
