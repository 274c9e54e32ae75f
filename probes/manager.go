package probes

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/clock"
)

// updatesBuffer is the capacity of each result channel, as in the kubelet.
const updatesBuffer = 20

// probeKey names one worker.
type probeKey struct {
	podUID    types.UID
	container string
	probeType ProbeType
}

type manager struct {
	opts      Options
	log       *slog.Logger
	clock     clock.WithTicker
	http      *httpProber
	userAgent string
	start     time.Time

	ctx    context.Context // canceled by Stop; parent of every worker's
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	workers map[probeKey]*worker
	stopped bool

	results [3]*resultCache // by ProbeType
	updates [3]chan Update  // by ProbeType

	// jitter gives the delay before the first probe of a worker started less
	// than a period after the manager; tests replace it.
	jitter func(period time.Duration) time.Duration
	// probed, when set (by tests), is called by a worker after each probe
	// loop iteration with what the iteration decided.
	probed func(w *worker, keepGoing bool)
}

// New returns a Manager, or an error naming the required field o lacks
// (Options.Status; a nil pointer in the interface counts as missing).
func New(o Options) (Manager, error) {
	if isNil(o.Status) {
		return nil, errors.New("probes: Options.Status is required (the pods' API status that probes read container IDs and IPs from)")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.UserAgent == "" {
		o.UserAgent = defaultUserAgent()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &manager{
		opts:      o,
		log:       o.Logger,
		clock:     o.Clock,
		http:      newHTTPProber(o.Logger),
		userAgent: o.UserAgent,
		start:     o.Clock.Now(),
		ctx:       ctx,
		cancel:    cancel,
		workers:   map[probeKey]*worker{},
		jitter: func(period time.Duration) time.Duration {
			return time.Duration(rand.Float64() * float64(period))
		},
	}
	for i := range m.results {
		m.results[i] = &resultCache{m: map[string]cachedResult{}}
		m.updates[i] = make(chan Update, updatesBuffer)
	}
	return m, nil
}

// isNil reports whether v is nil or holds a nil pointer, map, func or channel.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

func (m *manager) Start() {}

func (m *manager) Stop() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

func (m *manager) Liveness() <-chan Update  { return m.updates[Liveness] }
func (m *manager) Readiness() <-chan Update { return m.updates[Readiness] }
func (m *manager) Startup() <-chan Update   { return m.updates[Startup] }

// probedContainers lists the containers that may have probes: the app
// containers and the restartable init containers (sidecars).
func probedContainers(pod *v1.Pod) []v1.Container {
	cs := append([]v1.Container(nil), pod.Spec.Containers...)
	for _, c := range pod.Spec.InitContainers {
		if isRestartable(&c) {
			cs = append(cs, c)
		}
	}
	return cs
}

func isRestartable(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

func (m *manager) AddPod(pod *v1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	for _, c := range probedContainers(pod) {
		for _, t := range [...]ProbeType{Startup, Readiness, Liveness} {
			if probeSpec(t, &c) == nil {
				continue
			}
			key := probeKey{podUID: pod.UID, container: c.Name, probeType: t}
			if w, ok := m.workers[key]; ok && w.ctx.Err() == nil {
				continue // already probing
			}
			w := newWorker(m, key, pod, c)
			m.workers[key] = w
			m.wg.Add(1)
			go w.run()
		}
	}
}

// stopWorkers stops the workers for which match says so.
func (m *manager) stopWorkers(match func(probeKey) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, w := range m.workers {
		if match(key) {
			w.cancel()
		}
	}
}

func (m *manager) RemovePod(pod *v1.Pod) {
	m.stopWorkers(func(k probeKey) bool { return k.podUID == pod.UID })
}

func (m *manager) StopLivenessAndStartup(pod *v1.Pod) {
	m.stopWorkers(func(k probeKey) bool {
		return k.podUID == pod.UID && (k.probeType == Liveness || k.probeType == Startup)
	})
}

func (m *manager) CleanupPods(desired map[types.UID]sets.Empty) {
	m.stopWorkers(func(k probeKey) bool {
		_, ok := desired[k.podUID]
		return !ok
	})
}

// removeWorker is called by a worker as it ends.
func (m *manager) removeWorker(w *worker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.workers[w.key] == w {
		delete(m.workers, w.key)
	}
}

func (m *manager) getWorker(key probeKey) (*worker, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.workers[key]
	return w, ok
}

func (m *manager) workerCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.workers)
}

func (m *manager) Get(t ProbeType, containerID string) (Result, bool) {
	if t < Liveness || t > Startup {
		return Unknown, false
	}
	return m.results[t].get(criID(containerID))
}

func (m *manager) UpdatePodStatus(pod *v1.Pod, status *v1.PodStatus) {
	for i := range status.ContainerStatuses {
		m.updateContainerStatus(pod.UID, &status.ContainerStatuses[i])
	}
	for i := range status.InitContainerStatuses {
		cs := &status.InitContainerStatuses[i]
		var spec *v1.Container
		for j := range pod.Spec.InitContainers {
			if pod.Spec.InitContainers[j].Name == cs.Name {
				spec = &pod.Spec.InitContainers[j]
				break
			}
		}
		if spec != nil && isRestartable(spec) {
			m.updateContainerStatus(pod.UID, cs)
			continue
		}
		started := m.containerStarted(pod.UID, cs)
		cs.Started = &started
		// A plain init container is ready once it exited successfully.
		cs.Ready = cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
	}
}

// updateContainerStatus sets Started and Ready of a long-running container.
func (m *manager) updateContainerStatus(uid types.UID, cs *v1.ContainerStatus) {
	started := m.containerStarted(uid, cs)
	cs.Started = &started
	if !started {
		cs.Ready = false
		return
	}
	if r, ok := m.results[Readiness].get(criID(cs.ContainerID)); ok && r == Success {
		cs.Ready = true
		return
	}
	w, exists := m.getWorker(probeKey{podUID: uid, container: cs.Name, probeType: Readiness})
	cs.Ready = !exists // no readiness probe: ready when started
	if exists {
		// Ask for a probe now rather than at the next period.
		select {
		case w.trigger <- struct{}{}:
		default:
		}
	}
}

// containerStarted says whether a container counts as started: running, and
// its startup probe succeeded or it has none.
func (m *manager) containerStarted(uid types.UID, cs *v1.ContainerStatus) bool {
	if cs.State.Running == nil {
		return false
	}
	if r, ok := m.results[Startup].get(criID(cs.ContainerID)); ok {
		return r == Success
	}
	_, exists := m.getWorker(probeKey{podUID: uid, container: cs.Name, probeType: Startup})
	return !exists
}

// resultCache holds the published result of one probe type per container
// (bare CRI id), with the worker that set it.
type resultCache struct {
	mu sync.RWMutex
	m  map[string]cachedResult
}

type cachedResult struct {
	result Result
	owner  *worker
}

// set stores r for id and says whether it differs from what was there.
func (c *resultCache) set(id string, r Result, owner *worker) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, ok := c.m[id]
	c.m[id] = cachedResult{result: r, owner: owner}
	return !ok || prev.result != r
}

func (c *resultCache) get(id string) (Result, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[id]
	return e.result, ok
}

// remove forgets id's result if owner set it last.
func (c *resultCache) remove(id string, owner *worker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok && e.owner == owner {
		delete(c.m, id)
	}
}
