package agent

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// A pod worker drives one pod through its life, on its own goroutine:
//
//	syncing ──(pod left the desired set, or reached a terminal phase)──▶ terminating
//	terminating ──(its containers and sandbox are stopped)──▶ terminated
//	terminated ──(pod left the desired set)──▶ cleaned up; the worker exits
//
// Updates never queue up: a worker holds only the latest desired pod, and any
// number of wake-ups while it syncs collapse into one more sync (latest update
// wins). A pod added again (same UID) while its worker stops it starts over
// once it is cleaned up; a new instance of a pod (same namespace and name, new
// UID: an edited manifest) starts once the previous one has stopped.

type workerState int

const (
	stateSyncing workerState = iota
	stateTerminating
	stateTerminated
)

func (s workerState) String() string {
	return [...]string{"syncing", "terminating", "terminated"}[s]
}

// podSyncer is what pod workers call; the Agent implements it.
type podSyncer interface {
	// syncPod brings the pod toward its spec, from a runtime status newer than
	// minTime (the end of the worker's last sync that changed the pod in the
	// runtime).
	syncPod(ctx context.Context, pod *v1.Pod, minTime time.Time) syncResult
	// terminatePod stops every container and the sandbox of the pod, gracefully.
	terminatePod(ctx context.Context, pod *v1.Pod, minTime time.Time) error
	// cleanupPod removes what is left of a pod that left the desired set.
	cleanupPod(ctx context.Context, pod *v1.Pod) error
}

// syncResult is what one sync did.
type syncResult struct {
	// terminal: the pod reached Succeeded or Failed and must not run again.
	terminal bool
	// retry asks for another sync after that long (0: only when something
	// happens).
	retry time.Duration
	// changed: the sync changed the pod in the runtime (its next sync needs a
	// status read after this one ended).
	changed bool
	err     error
}

type podWorker struct {
	uid     types.UID
	wake    chan struct{}
	mu      sync.Mutex
	pod     *v1.Pod
	removed bool
	// restart: the pod was added again after its removal; once the old
	// instance is cleaned up the worker starts over instead of exiting.
	restart bool
	// started: the pod was synced once. Before that it waits while another
	// instance of the same pod (same namespace and name, another UID: an
	// edited manifest) is still running, as upstream's static pods do.
	started, waiting bool
	state            workerState
	done             chan struct{}
	// lastChange is when the last sync that changed the pod in the runtime
	// ended; only the worker's goroutine uses it.
	lastChange time.Time
}

func (w *podWorker) kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *podWorker) snapshot() (*v1.Pod, bool, workerState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.removed, w.state
}

func (w *podWorker) setState(s workerState) {
	w.mu.Lock()
	w.state = s
	w.mu.Unlock()
}

// podWorkers owns the workers, one per pod UID.
type podWorkers struct {
	syncer    podSyncer
	clock     clock.WithTicker
	resync    time.Duration // sync a quiet pod at least this often
	errorWait time.Duration // retry a failed sync after this long
	onSync    func(state workerState, d time.Duration, err error)
	log       logger

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	wg      sync.WaitGroup
}

type logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
	Debug(msg string, args ...any)
}

func newPodWorkers(s podSyncer, c clock.WithTicker, resync time.Duration, log logger) *podWorkers {
	return &podWorkers{syncer: s, clock: c, resync: resync, errorWait: 10 * time.Second, log: log, workers: map[types.UID]*podWorker{}}
}

// update sets the desired pod of its worker, starting one if needed.
func (p *podWorkers) update(ctx context.Context, pod *v1.Pod) {
	// p.mu is held throughout, so a worker deciding to exit (run) sees this
	// update.
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.workers[pod.UID]
	if !ok {
		// The pod is set before the worker runs: its first timer fires at once.
		w = &podWorker{uid: pod.UID, pod: pod, wake: make(chan struct{}, 1), done: make(chan struct{})}
		p.workers[pod.UID] = w
		p.wg.Add(1)
		go p.run(ctx, w)
	}
	w.mu.Lock()
	w.pod = pod
	if w.removed {
		w.restart = true
	}
	w.mu.Unlock()
	w.kick()
}

// setPod replaces the pod a worker holds without starting anything or undoing
// a removal: a pod deleted in the API brings its deletion's grace period.
func (p *podWorkers) setPod(pod *v1.Pod) {
	p.mu.Lock()
	w := p.workers[pod.UID]
	p.mu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
}

// remove tells the worker of uid that its pod left the desired set.
func (p *podWorkers) remove(uid types.UID) {
	p.mu.Lock()
	w := p.workers[uid]
	p.mu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	w.removed = true
	w.restart = false
	w.mu.Unlock()
	w.kick()
}

// kick wakes the worker of uid for a sync now (a lifecycle event, a probe result).
func (p *podWorkers) kick(uid types.UID) {
	p.mu.Lock()
	w := p.workers[uid]
	p.mu.Unlock()
	if w != nil {
		w.kick()
	}
}

// known reports whether a worker runs for uid.
func (p *podWorkers) known(uid types.UID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.workers[uid]
	return ok
}

// states returns each worker's state.
func (p *podWorkers) states() map[types.UID]workerState {
	p.mu.Lock()
	ws := make([]*podWorker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	out := make(map[types.UID]workerState, len(ws))
	for _, w := range ws {
		_, _, st := w.snapshot()
		out[w.uid] = st
	}
	return out
}

// count returns how many workers run.
func (p *podWorkers) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.workers)
}

// wait waits for every worker to exit (after ctx ends, or all pods are removed).
func (p *podWorkers) wait() { p.wg.Wait() }

func (p *podWorkers) run(ctx context.Context, w *podWorker) {
	defer p.wg.Done()
	defer close(w.done)
	timer := p.clock.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C():
		}
		if !timer.Stop() {
			select {
			case <-timer.C():
			default:
			}
		}
		next, exit := p.step(ctx, w)
		if exit {
			if p.restartOrExit(w) {
				w.kick()
				continue
			}
			return
		}
		if next > 0 {
			timer.Reset(next)
		}
	}
}

// restartOrExit is called when w cleaned up its pod: it forgets w, unless the
// pod was added again meanwhile, in which case w starts over with it (true).
func (p *podWorkers) restartOrExit(w *podWorker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.restart {
		w.restart, w.removed, w.state, w.started = false, false, stateSyncing, false
		return true
	}
	delete(p.workers, w.uid)
	return false
}

// step does one unit of work for w and says when to come back (0: only when
// woken) and whether the worker is done.
func (p *podWorkers) step(ctx context.Context, w *podWorker) (time.Duration, bool) {
	pod, removed, state := w.snapshot()
	start := p.clock.Now()
	switch state {
	case stateSyncing:
		if removed {
			w.setState(stateTerminating)
			return p.step(ctx, w)
		}
		if !p.mayStart(w, pod) {
			return 0, false // kicked when the other instance has stopped
		}
		res := p.syncer.syncPod(ctx, pod, w.lastChange)
		if res.changed {
			w.lastChange = p.clock.Now()
		}
		terminal, retry, err := res.terminal, res.retry, res.err
		p.observe(stateSyncing, start, err)
		if terminal {
			p.log.Info("pod reached a terminal phase; stopping it", "pod", podRef(pod))
			w.setState(stateTerminating)
			return p.step(ctx, w)
		}
		if err != nil {
			p.log.Warn("pod sync failed; retrying", "pod", podRef(pod), "err", err)
			if retry == 0 || retry > p.errorWait {
				retry = p.errorWait
			}
		}
		if retry == 0 || retry > p.resync {
			retry = p.resync
		}
		return retry, false
	case stateTerminating:
		err := p.syncer.terminatePod(ctx, pod, w.lastChange)
		p.observe(stateTerminating, start, err)
		if err != nil {
			p.log.Warn("pod termination failed; retrying", "pod", podRef(pod), "err", err)
			return p.errorWait / 5, false
		}
		w.setState(stateTerminated)
		p.kickInstances(w, pod)
		if removed {
			return p.step(ctx, w)
		}
		return 0, false
	case stateTerminated:
		if !removed {
			// A finished pod stays (with its status and logs) until its
			// manifest goes.
			return 0, false
		}
		err := p.syncer.cleanupPod(ctx, pod)
		p.observe(stateTerminated, start, err)
		if err != nil {
			p.log.Warn("pod cleanup failed; retrying", "pod", podRef(pod), "err", err)
			return p.errorWait / 5, false
		}
		return 0, true
	}
	return 0, false
}

// mayStart says whether w may sync its pod: once it has, or when no other
// worker's instance of the same pod is still running.
func (p *podWorkers) mayStart(w *podWorker, pod *v1.Pod) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.mu.Lock()
	started, waiting := w.started, w.waiting
	w.mu.Unlock()
	if started {
		return true
	}
	for uid, o := range p.workers {
		if o == w {
			continue
		}
		op, _, st := o.snapshot()
		if op != nil && op.Namespace == pod.Namespace && op.Name == pod.Name && st != stateTerminated {
			if !waiting {
				p.log.Info("pod waits for its previous instance to stop", "pod", podRef(pod), "previous", uid)
			}
			w.mu.Lock()
			w.waiting = true
			w.mu.Unlock()
			return false
		}
	}
	w.mu.Lock()
	w.started, w.waiting = true, false
	w.mu.Unlock()
	return true
}

// kickInstances wakes the other workers of w's pod (same namespace and
// name): w's instance has stopped.
func (p *podWorkers) kickInstances(w *podWorker, pod *v1.Pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range p.workers {
		if op, _, _ := o.snapshot(); o != w && op != nil && op.Namespace == pod.Namespace && op.Name == pod.Name {
			o.kick()
		}
	}
}

func (p *podWorkers) observe(state workerState, start time.Time, err error) {
	if p.onSync != nil {
		p.onSync(state, p.clock.Since(start), err)
	}
}

func podRef(pod *v1.Pod) string {
	if pod == nil {
		return "<nil>"
	}
	return pod.Namespace + "/" + pod.Name
}
