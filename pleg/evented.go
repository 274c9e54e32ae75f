package pleg

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Stream retry delays of the evented PLEG: doubling from streamRetryMin up to
// streamRetryMax while events drive the PLEG, streamRetryFallback once it fell
// back to relisting.
const (
	streamRetryMin      = 200 * time.Millisecond
	streamRetryMax      = 10 * time.Second
	streamRetryFallback = 30 * time.Second
)

// New returns the evented PLEG, or the generic one when o.DisableEvented is set.
//
// The evented PLEG is driven by the runtime's GetContainerEvents stream: each
// event carries the pod's sandbox status and all its container statuses, which go
// into the cache as the pod's status at the event's creation time, with no further
// CRI call, and the event becomes a PLEG event (CONTAINER_STARTED →
// ContainerStarted, STOPPED → ContainerDied, CREATED → ContainerChanged, DELETED
// → ContainerRemoved, preceded by ContainerDied unless the container had exited;
// any event about a sandbox → PodSync). While the stream is up, a generic relist
// every EventedRelistPeriod is the safety net and the cache is marked current
// every RelistPeriod, so readers waiting for a newer status than the last event
// are not held up; while it is down (not yet established, or between
// reconnections) the PLEG relists every RelistPeriod like the generic one.
//
// Whether the runtime supports events is found out by using them: a stream that
// fails with codes.Unimplemented switches the PLEG to the generic relist for good.
// Other failures are retried with back-off (200 ms doubling up to 10 s), with a
// relist after each (events may have been missed); FallbackAfter failures within
// FallbackWindow make it fall back to relisting every RelistPeriod. Fallen back,
// it keeps trying to reopen the stream every 30 s and returns to events once one
// is established (with a relist to cover the gap). Both switches are logged.
func New(o Options) PLEG {
	o = o.withDefaults()
	if o.DisableEvented {
		return newRelister(o)
	}
	return newEvented(o)
}

// IsEvented reports whether container events currently drive p: p is an evented
// PLEG whose event stream is open and that has not fallen back to relisting. It
// is false before the first stream is established (p relists every RelistPeriod
// until then), between a stream's failure and the reconnection, and after a
// fallback until a stream is re-established.
func IsEvented(p PLEG) bool {
	e, ok := p.(*evented)
	if !ok {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.live && !e.fallback
}

type evented struct {
	*relister
	ch chan *runtimeapi.ContainerEventResponse

	mu        sync.Mutex
	fallback  bool   // relisting every RelistPeriod
	attempt   uint64 // current stream attempt
	streaming bool   // the current attempt is running
	live      bool   // the current attempt's stream is established
	everLive  bool   // a stream was established once

	streamMu   sync.Mutex // Start and Stop of the stream goroutines
	stopStream context.CancelFunc
	wg         sync.WaitGroup
}

func newEvented(o Options) *evented {
	e := &evented{
		relister: newRelister(o),
		ch:       make(chan *runtimeapi.ContainerEventResponse, o.EventBuffer),
	}
	e.setMode(false)
	e.relister.tick = e.tick
	return e
}

func (e *evented) Start() {
	e.streamMu.Lock()
	defer e.streamMu.Unlock()
	if e.stopStream != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.stopStream = cancel
	streamDone := make(chan struct{})
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		defer close(streamDone)
		e.watch(ctx)
	}()
	go func() {
		defer e.wg.Done()
		e.consume(ctx, streamDone)
	}()
	e.relister.Start()
}

func (e *evented) Stop() {
	e.streamMu.Lock()
	defer e.streamMu.Unlock()
	if e.stopStream == nil {
		return
	}
	e.stopStream()
	e.wg.Wait()
	e.stopStream = nil
	e.relister.Stop()
}

func (e *evented) inFallback() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fallback
}

// setMode switches between events (fallback false) and relisting (true), which
// changes the health threshold and how often the stream is retried.
func (e *evented) setMode(fallback bool) {
	e.mu.Lock()
	e.fallback = fallback
	e.mu.Unlock()
	if fallback {
		e.threshold.Store(int64(e.o.RelistThreshold))
	} else {
		e.threshold.Store(int64(e.o.EventedRelistPeriod + e.o.RelistThreshold))
	}
}

// tick runs every RelistPeriod (after the end of the last relist). While the
// stream is up, every change reaches the cache as an event: the cache is marked
// current (once the events received are handled) and relists are only the
// safety net. Otherwise it relists, as the generic PLEG does.
func (e *evented) tick(ctx context.Context) {
	e.mu.Lock()
	live := e.live && !e.fallback
	e.mu.Unlock()
	now := e.o.Clock.Now()
	if !live || now.Sub(e.attempted()) >= e.o.EventedRelistPeriod {
		_ = e.relist(ctx) // a failure is logged by relist and shows in Healthy
		return
	}
	if len(e.ch) == 0 {
		e.o.Cache.UpdateTime(now)
	}
}

// watch keeps a container event stream open until ctx ends.
func (e *evented) watch(ctx context.Context) {
	backoff := streamRetryMin
	var failures []time.Time
	for {
		e.mu.Lock()
		e.attempt++
		attempt := e.attempt
		e.streaming, e.live = true, false
		e.mu.Unlock()

		err := e.o.Runtime.GetContainerEvents(ctx, e.ch, func(s runtimeapi.RuntimeService_GetContainerEventsClient) {
			e.established(attempt, s)
		})

		e.mu.Lock()
		wasLive := e.live
		e.streaming, e.live = false, false
		e.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = status.Error(codes.Unavailable, "container event stream ended")
		}
		e.o.Metrics.ObserveStream(err)
		if status.Code(err) == codes.Unimplemented {
			e.log.Warn("runtime does not implement GetContainerEvents; using the generic PLEG", "err", err, "relistPeriod", e.o.RelistPeriod)
			e.setMode(true)
			e.relistNow()
			return
		}
		if wasLive {
			backoff = streamRetryMin
		}
		now := e.o.Clock.Now()
		failures = append(failures, now)
		for len(failures) > 0 && now.Sub(failures[0]) > e.o.FallbackWindow {
			failures = failures[1:]
		}
		delay := streamRetryFallback
		if !e.inFallback() {
			if len(failures) >= e.o.FallbackAfter {
				e.log.Warn("container event stream keeps failing; falling back to the generic PLEG",
					"failures", len(failures), "window", e.o.FallbackWindow, "err", err, "relistPeriod", e.o.RelistPeriod)
				e.setMode(true)
			} else {
				e.log.Info("container event stream failed; relisting and reconnecting", "err", err, "retryIn", backoff)
				delay = backoff
				backoff = min(2*backoff, streamRetryMax)
			}
			e.relistNow() // events may have been missed
		}
		t := e.o.Clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// established is called when attempt's stream is open. With a gRPC stream, the
// server's headers tell that the subscription is live (a trailers-only answer,
// such as Unimplemented, has none).
func (e *evented) established(attempt uint64, s runtimeapi.RuntimeService_GetContainerEventsClient) {
	if s == nil {
		e.markLive(attempt)
		return
	}
	go func() {
		if md, _ := s.Header(); md != nil {
			e.markLive(attempt)
		}
	}()
}

func (e *evented) markLive(attempt uint64) {
	e.mu.Lock()
	if attempt != e.attempt || !e.streaming || e.live {
		e.mu.Unlock()
		return
	}
	e.live = true
	wasFallback, first := e.fallback, !e.everLive
	e.everLive = true
	e.mu.Unlock()
	e.o.Metrics.ObserveStream(nil)
	switch {
	case wasFallback:
		e.log.Info("container event stream re-established; evented PLEG again", "relistPeriod", e.o.EventedRelistPeriod)
		e.setMode(false)
	case first:
		e.log.Info("container event stream established; evented PLEG", "relistPeriod", e.o.EventedRelistPeriod)
	}
	// Events from now on arrive; a relist covers what happened before.
	e.relistNow()
}

// consume handles the stream's events until watch ended (the runtime client may
// block sending to e.ch until then).
func (e *evented) consume(ctx context.Context, streamDone <-chan struct{}) {
	for {
		select {
		case ev := <-e.ch:
			if ctx.Err() == nil {
				e.handle(ev)
			}
		case <-streamDone:
			return
		}
	}
}

// handle turns one CRI container event into a cached status and PLEG events.
func (e *evented) handle(ev *runtimeapi.ContainerEventResponse) {
	ts := e.o.Clock.Now()
	if ev.CreatedAt > 0 {
		ts = time.Unix(0, ev.CreatedAt)
		e.o.Metrics.ObserveEventLatency(e.o.Clock.Since(ts))
	}
	id := ev.ContainerId
	uid := e.podOf(ev)
	if uid == "" {
		// Not the agent's object, or one we cannot place: a relist sorts it out.
		if ev.PodSandboxStatus == nil && len(ev.ContainersStatuses) == 0 {
			e.relistNow()
		}
		return
	}
	cached, _ := e.o.Cache.Get(uid)
	if cached == nil {
		cached = &PodStatus{ID: uid}
	}
	sandbox := ev.PodSandboxStatus.GetId() == id || hasSandbox(cached, id)

	if ev.ContainerEventType == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
		e.setOwner(id, "")
		if sandbox {
			st := withoutSandbox(cached, id)
			if len(st.SandboxStatuses) == 0 && len(st.ContainerStatuses) == 0 {
				e.o.Cache.Delete(uid)
				e.send(&Event{ID: uid, Type: PodSync, Data: id})
				return
			}
			st.TimeStamp = ts
			if e.o.Cache.Set(uid, st, nil, ts) {
				e.send(&Event{ID: uid, Type: PodSync, Data: id})
			}
			return
		}
	}
	if ev.PodSandboxStatus == nil {
		// The sandbox went away while the event was made: its own event, or a
		// relist, brings the pod up to date.
		e.relistNow()
		return
	}
	e.setOwner(ev.PodSandboxStatus.Id, uid)
	for _, c := range ev.ContainersStatuses {
		e.setOwner(c.Id, uid)
	}
	st := mergeEvent(cached, ev.PodSandboxStatus, ev.ContainersStatuses)
	st.ID = uid
	st.TimeStamp = ts
	st.IPs = keepIPs(e.o.Cache, st)
	if !e.o.Cache.Set(uid, st, nil, ts) {
		return // a newer status is cached (a relist saw this change already)
	}
	if sandbox {
		e.send(&Event{ID: uid, Type: PodSync, Data: id})
		return
	}
	ev2 := func(t EventType) *Event { return &Event{ID: uid, Type: t, Data: id} }
	switch ev.ContainerEventType {
	case runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT:
		e.send(ev2(ContainerChanged))
	case runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT:
		e.send(ev2(ContainerStarted))
	case runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT:
		e.send(ev2(ContainerDied))
	case runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT:
		if c := findContainer(cached, id); c == nil || c.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			e.send(ev2(ContainerDied))
		}
		e.send(ev2(ContainerRemoved))
	}
}

// podOf finds the pod an event is about: from the labels of its sandbox or
// containers, else from what was seen of the object before.
func (e *evented) podOf(ev *runtimeapi.ContainerEventResponse) types.UID {
	if sb := ev.PodSandboxStatus; sb != nil {
		return podUID(sb.Labels) // a sandbox without the label is not the agent's
	}
	for _, c := range ev.ContainersStatuses {
		if uid := podUID(c.Labels); uid != "" {
			return uid
		}
	}
	uid, _ := e.owner(ev.ContainerId)
	return uid
}

func hasSandbox(st *PodStatus, id string) bool {
	for _, sb := range st.SandboxStatuses {
		if sb.Id == id {
			return true
		}
	}
	return false
}

func findContainer(st *PodStatus, id string) *runtimeapi.ContainerStatus {
	for _, c := range st.ContainerStatuses {
		if c.Id == id {
			return c
		}
	}
	return nil
}

// owner of container c among sandboxes (newest first): the newest sandbox created
// no later than c. The kubelet creates a pod's containers in its newest sandbox
// only, so this tells which sandbox a cached container belongs to (CRI container
// statuses do not say).
func ownerOf(c *runtimeapi.ContainerStatus, sandboxes []*runtimeapi.PodSandboxStatus) string {
	for _, sb := range sandboxes {
		if sb.CreatedAt <= c.CreatedAt {
			return sb.Id
		}
	}
	return ""
}

// mergeEvent is the pod's status after an event about sandbox sb, whose
// containers are now exactly cs: the cached status with sb and its containers
// replaced; the pod's other sandboxes and their containers stay as cached.
func mergeEvent(cached *PodStatus, sb *runtimeapi.PodSandboxStatus, cs []*runtimeapi.ContainerStatus) *PodStatus {
	st := &PodStatus{ID: cached.ID}
	st.SandboxStatuses = append(st.SandboxStatuses, sb)
	for _, s := range cached.SandboxStatuses {
		if s.Id != sb.Id {
			st.SandboxStatuses = append(st.SandboxStatuses, s)
		}
	}
	sortSandboxes(st.SandboxStatuses)
	inEvent := map[string]bool{}
	for _, c := range cs {
		inEvent[c.Id] = true
	}
	st.ContainerStatuses = append(st.ContainerStatuses, cs...)
	for _, c := range cached.ContainerStatuses {
		if !inEvent[c.Id] && ownerOf(c, st.SandboxStatuses) != sb.Id {
			st.ContainerStatuses = append(st.ContainerStatuses, c)
		}
	}
	sortContainers(st.ContainerStatuses)
	st.IPs = sandboxIPs(st.SandboxStatuses)
	st.Name, st.Namespace = podName(st)
	if st.Name == "" {
		st.Name, st.Namespace = cached.Name, cached.Namespace
	}
	return st
}

// withoutSandbox is the cached status without sandbox id and its containers.
func withoutSandbox(cached *PodStatus, id string) *PodStatus {
	st := &PodStatus{ID: cached.ID, Name: cached.Name, Namespace: cached.Namespace}
	for _, s := range cached.SandboxStatuses {
		if s.Id != id {
			st.SandboxStatuses = append(st.SandboxStatuses, s)
		}
	}
	for _, c := range cached.ContainerStatuses {
		if ownerOf(c, cached.SandboxStatuses) != id {
			st.ContainerStatuses = append(st.ContainerStatuses, c)
		}
	}
	st.IPs = cached.IPs
	return st
}
