package pleg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// NewGeneric returns the generic PLEG: every RelistPeriod it lists all sandboxes
// and containers, diffs each object's state against the previous relist, inspects
// the pods that changed (Concurrency at a time, each within InspectTimeout) into
// the cache, sends their events, and then marks the whole cache current as of the
// relist's start.
//
// Container transitions give the kubelet's events: to running ContainerStarted, to
// exited ContainerDied, to created or unknown ContainerChanged (which the kubelet
// generates but does not deliver; consumers may ignore it), and disappearing
// ContainerRemoved (preceded by ContainerDied unless it had exited already). Any
// change of a sandbox gives PodSync with the sandbox id. A pod whose inspection
// failed gets the error in the cache and no events; it is inspected again at the
// next relist.
func NewGeneric(o Options) PLEG {
	return newRelister(o.withDefaults())
}

// relister is the generic PLEG; the evented one drives one too, as its safety net.
type relister struct {
	o      Options
	log    *slog.Logger
	events chan *Event

	// Owned by the relisting goroutine (relists never overlap: relistMu).
	relistMu    sync.Mutex
	records     map[types.UID]*podSnapshot // as of the last successful inspection
	reinspect   map[types.UID]bool
	lastAttempt time.Time

	lastRelist atomic.Pointer[time.Time] // start of the last successful relist
	threshold  atomic.Int64              // time.Duration, for Healthy
	// tick, when set, decides what a loop tick does instead of relisting.
	tick func(ctx context.Context)

	ownersMu sync.Mutex
	owners   map[string]types.UID // sandbox and container id → pod, as last seen

	kick chan struct{}

	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func newRelister(o Options) *relister {
	r := &relister{
		o:         o,
		log:       o.Logger.With("component", "pleg"),
		events:    make(chan *Event, o.EventBuffer),
		records:   map[types.UID]*podSnapshot{},
		reinspect: map[types.UID]bool{},
		owners:    map[string]types.UID{},
		kick:      make(chan struct{}, 1),
	}
	r.threshold.Store(int64(o.RelistThreshold))
	return r
}

func (r *relister) Watch() <-chan *Event { return r.events }

func (r *relister) Start() {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	if r.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		r.run(ctx)
	}()
}

func (r *relister) Stop() {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel, r.done = nil, nil
}

// Healthy is false until a relist succeeded and when the last success is older
// than the threshold.
func (r *relister) Healthy() (bool, error) {
	last := r.lastRelist.Load()
	if last == nil {
		return false, errors.New("pleg: no relist has succeeded yet")
	}
	r.o.Metrics.SetLastSeen(*last)
	threshold := time.Duration(r.threshold.Load())
	if elapsed := r.o.Clock.Since(*last); elapsed > threshold {
		return false, fmt.Errorf("pleg: last successful relist %v ago; threshold is %v", elapsed, threshold)
	}
	return true, nil
}

// relistNow asks the loop for a relist as soon as possible.
func (r *relister) relistNow() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run relists at once, then RelistPeriod after the end of each relist (or what
// tick decides then), and whenever relistNow asks.
func (r *relister) run(ctx context.Context) {
	// A failed relist is logged by relist and shows in Healthy: the loop
	// retries at the next period.
	_ = r.relist(ctx)
	for {
		t := r.o.Clock.NewTimer(r.o.RelistPeriod)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.kick:
			t.Stop()
			_ = r.relist(ctx)
		case <-t.C():
			if r.tick != nil {
				r.tick(ctx)
			} else {
				_ = r.relist(ctx)
			}
		}
	}
}

func (r *relister) attempted() time.Time {
	r.relistMu.Lock()
	defer r.relistMu.Unlock()
	return r.lastAttempt
}

// inspection is one pod a relist inspects: what it saw and the events to send
// once the pod's status is in the cache.
type inspection struct {
	uid    types.UID
	snap   *podSnapshot
	events []*Event
	failed bool
}

// relist lists the runtime once, diffs it against the records and updates the
// cache and records for the pods that changed.
func (r *relister) relist(ctx context.Context) error {
	r.relistMu.Lock()
	defer r.relistMu.Unlock()
	start := r.o.Clock.Now()
	r.lastAttempt = start
	if last := r.lastRelist.Load(); last != nil {
		r.o.Metrics.ObserveRelistInterval(start.Sub(*last))
	}
	defer func() { r.o.Metrics.ObserveRelistDuration(r.o.Clock.Since(start)) }()

	lctx, cancel := context.WithTimeout(ctx, r.o.InspectTimeout)
	sandboxes, err := r.o.Runtime.ListPodSandbox(lctx, nil)
	if err == nil {
		var containers []*runtimeapi.Container
		containers, err = r.o.Runtime.ListContainers(lctx, nil)
		if err == nil {
			cancel()
			r.apply(ctx, start, group(sandboxes, containers))
			return nil
		}
		err = fmt.Errorf("pleg: relist: list containers: %w", err)
	} else {
		err = fmt.Errorf("pleg: relist: list sandboxes: %w", err)
	}
	cancel()
	if ctx.Err() == nil {
		r.log.Warn("relist failed", "err", err)
	}
	return err
}

// apply processes one successful listing taken at start.
func (r *relister) apply(ctx context.Context, start time.Time, current map[types.UID]*podSnapshot) {
	r.lastRelist.Store(&start)
	r.setOwners(current)

	uids := make([]types.UID, 0, len(current)+len(r.records))
	for uid := range current {
		uids = append(uids, uid)
	}
	for uid := range r.records {
		if current[uid] == nil {
			uids = append(uids, uid)
		}
	}
	for uid := range r.reinspect {
		if current[uid] == nil && r.records[uid] == nil {
			uids = append(uids, uid) // first seen, failed, now gone
		}
	}
	slices.Sort(uids)

	var todo []*inspection
	for _, uid := range uids {
		old, cur := r.records[uid], current[uid]
		events := diffPod(uid, old, cur)
		if len(events) == 0 && !r.reinspect[uid] {
			continue
		}
		if cur == nil {
			// The pod has no sandbox or container left.
			r.o.Cache.Delete(uid)
			delete(r.records, uid)
			r.send(events...)
			continue
		}
		todo = append(todo, &inspection{uid: uid, snap: cur, events: events})
	}
	r.inspectAll(ctx, start, todo)

	reinspect := map[types.UID]bool{}
	for _, in := range todo {
		if in.failed {
			// Keep the old record: the same changes show up again next time.
			reinspect[in.uid] = true
			continue
		}
		r.records[in.uid] = in.snap
	}
	r.reinspect = reinspect
	// Only now is every pod's cached status known to be as new as start.
	r.o.Cache.UpdateTime(start)
}

// inspectAll inspects the pods of todo, Concurrency at a time. Each pod's events
// go out as soon as its status is cached, so a slow pod delays only itself.
func (r *relister) inspectAll(ctx context.Context, start time.Time, todo []*inspection) {
	work := make(chan *inspection)
	var wg sync.WaitGroup
	for range min(r.o.Concurrency, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for in := range work {
				r.inspect(ctx, start, in)
			}
		}()
	}
	for _, in := range todo {
		work <- in
	}
	close(work)
	wg.Wait()
}

func (r *relister) inspect(ctx context.Context, start time.Time, in *inspection) {
	ictx, cancel := context.WithTimeout(ctx, r.o.InspectTimeout)
	st, err := inspectPod(ictx, r.o.Runtime, in.uid, in.snap.sandboxes, in.snap.containers)
	cancel()
	if err != nil {
		in.failed = true
		if ctx.Err() == nil {
			r.log.Warn("inspect pod failed; retrying at the next relist", "pod", in.uid, "err", err)
		}
		// Readers see the error; the status says only which pod it is.
		st = &PodStatus{ID: in.uid, Name: in.snap.name, Namespace: in.snap.namespace}
	} else {
		st.IPs = keepIPs(r.o.Cache, st)
	}
	st.TimeStamp = start
	if !r.o.Cache.Set(in.uid, st, err, start) || err != nil {
		// A newer status (from a container event) is cached already: its
		// events went out with it.
		return
	}
	r.send(in.events...)
}

// send delivers events without blocking; what does not fit is dropped and
// counted, as the kubelet does (the pod is synced periodically anyway).
func (r *relister) send(events ...*Event) {
	for _, ev := range events {
		select {
		case r.events <- ev:
			r.o.Metrics.IncEvent(ev.Type)
		default:
			r.o.Metrics.IncDiscardedEvent()
			r.log.Error("event channel full, event dropped", "pod", ev.ID, "type", ev.Type, "id", ev.Data)
		}
	}
}

func (r *relister) setOwners(current map[types.UID]*podSnapshot) {
	owners := make(map[string]types.UID, len(r.owners))
	for uid, p := range current {
		for id := range p.states {
			owners[id] = uid
		}
	}
	r.ownersMu.Lock()
	r.owners = owners
	r.ownersMu.Unlock()
}

// owner returns the pod of sandbox or container id, as last seen.
func (r *relister) owner(id string) (types.UID, bool) {
	r.ownersMu.Lock()
	defer r.ownersMu.Unlock()
	uid, ok := r.owners[id]
	return uid, ok
}

func (r *relister) setOwner(id string, uid types.UID) {
	r.ownersMu.Lock()
	defer r.ownersMu.Unlock()
	if uid == "" {
		delete(r.owners, id)
	} else {
		r.owners[id] = uid
	}
}

// podSnapshot is one pod as a relist listed it.
type podSnapshot struct {
	name, namespace string
	sandboxes       []*runtimeapi.PodSandbox
	containers      []*runtimeapi.Container
	states          map[string]objState // by sandbox or container id
}

type objState struct {
	state   state
	sandbox bool
}

// state is an object's state as the PLEG compares it (the kubelet's
// plegContainerState).
type state int

const (
	stateNone state = iota // does not exist
	stateRunning
	stateExited
	stateUnknown
)

func (s state) String() string {
	return [...]string{"non-existent", "running", "exited", "unknown"}[s]
}

// containerState maps a CRI container state; created counts as unknown, as in
// the kubelet.
func containerState(s runtimeapi.ContainerState) state {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return stateRunning
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return stateExited
	default:
		return stateUnknown
	}
}

func sandboxState(s runtimeapi.PodSandboxState) state {
	if s == runtimeapi.PodSandboxState_SANDBOX_READY {
		return stateRunning
	}
	return stateExited
}

// group sorts listed objects into pods by their io.kubernetes.pod.uid label.
func group(sandboxes []*runtimeapi.PodSandbox, containers []*runtimeapi.Container) map[types.UID]*podSnapshot {
	pods := map[types.UID]*podSnapshot{}
	get := func(uid types.UID) *podSnapshot {
		p := pods[uid]
		if p == nil {
			p = &podSnapshot{states: map[string]objState{}}
			pods[uid] = p
		}
		return p
	}
	for _, sb := range sandboxes {
		uid := podUID(sb.Labels)
		if uid == "" {
			continue
		}
		p := get(uid)
		p.sandboxes = append(p.sandboxes, sb)
		p.states[sb.Id] = objState{state: sandboxState(sb.State), sandbox: true}
		if p.name == "" {
			p.name, p.namespace = nameOf(sb.Labels, sb.Metadata)
		}
	}
	for _, c := range containers {
		uid := podUID(c.Labels)
		if uid == "" {
			continue
		}
		p := get(uid)
		p.containers = append(p.containers, c)
		p.states[c.Id] = objState{state: containerState(c.State)}
	}
	return pods
}

// diffPod returns the events between two listings of pod uid (nil: absent), in
// the order of the objects' ids.
func diffPod(uid types.UID, old, cur *podSnapshot) []*Event {
	ids := map[string]bool{}
	for _, p := range []*podSnapshot{old, cur} {
		if p != nil {
			for id := range p.states {
				ids[id] = true
			}
		}
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	var events []*Event
	for _, id := range sorted {
		o, c := old.state(id), cur.state(id)
		if o.sandbox || c.sandbox {
			if o.state != c.state {
				events = append(events, &Event{ID: uid, Type: PodSync, Data: id})
			}
			continue
		}
		events = append(events, containerEvents(uid, id, o.state, c.state)...)
	}
	return events
}

func (p *podSnapshot) state(id string) objState {
	if p == nil {
		return objState{}
	}
	return p.states[id] // stateNone when absent
}

// containerEvents are the events of container id going from state from to to
// (the kubelet's generateEvents).
func containerEvents(uid types.UID, id string, from, to state) []*Event {
	if from == to {
		return nil
	}
	ev := func(t EventType) *Event { return &Event{ID: uid, Type: t, Data: id} }
	switch to {
	case stateRunning:
		return []*Event{ev(ContainerStarted)}
	case stateExited:
		return []*Event{ev(ContainerDied)}
	case stateUnknown:
		return []*Event{ev(ContainerChanged)}
	default: // gone
		if from == stateExited {
			return []*Event{ev(ContainerRemoved)} // its death was reported already
		}
		return []*Event{ev(ContainerDied), ev(ContainerRemoved)}
	}
}
