package cri

import (
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventBuffer is how many events a slow subscriber may fall behind before events
// to it are dropped (and logged); a PLEG that misses events relists anyway.
const eventBuffer = 1024

// eventBus fans container events out to GetContainerEvents subscribers.
type eventBus struct {
	mu   sync.Mutex
	subs map[chan *runtime.ContainerEventResponse]struct{}
}

func (b *eventBus) subscribe() (<-chan *runtime.ContainerEventResponse, func()) {
	ch := make(chan *runtime.ContainerEventResponse, eventBuffer)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[chan *runtime.ContainerEventResponse]struct{}{}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}
}

// publish delivers ev to every subscriber without blocking; it returns how many
// subscribers missed it because their buffer was full.
func (b *eventBus) publish(ev *runtime.ContainerEventResponse) (dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
			dropped++
		}
	}
	return dropped
}

func (b *eventBus) active() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) > 0
}

// emit publishes an event about container (or sandbox) id of sandbox sandboxID,
// carrying the pod's status and its containers' statuses, as the kubelet's evented
// PLEG expects. The caller must not hold any object lock.
func (s *Server) emit(id, sandboxID string, typ runtime.ContainerEventType) {
	if !s.events.active() {
		return
	}
	var sbRec *sandboxRecord
	if sb, err := s.objs.sandbox(sandboxID); err == nil {
		rec := sb.snapshot()
		sbRec = &rec
	}
	s.emitFor(id, sandboxID, sbRec, typ)
}

// emitFor publishes an event with the status of sandbox record sbRec: a snapshot
// taken by the caller when the sandbox is no longer listed (its removal), since
// the kubelet's evented PLEG needs the sandbox's status in every event. A nil
// sbRec sends none.
func (s *Server) emitFor(id, sandboxID string, sbRec *sandboxRecord, typ runtime.ContainerEventType) {
	if !s.events.active() {
		return
	}
	ev := &runtime.ContainerEventResponse{
		ContainerId:        id,
		ContainerEventType: typ,
		CreatedAt:          time.Now().UnixNano(),
		ContainersStatuses: s.sandboxContainerStatuses(sandboxID),
	}
	if sbRec != nil {
		ev.PodSandboxStatus = sandboxStatus(sbRec)
	}
	if dropped := s.events.publish(ev); dropped > 0 {
		s.log.Warn("container event dropped for slow subscribers", "container", id, "type", typ.String(), "subscribers", dropped)
	}
}

// GetContainerEvents streams container lifecycle events until the client goes away.
// Exits arrive within milliseconds: they are driven by the monitors' exit records
// through inotify, not by polling.
func (s *Server) GetContainerEvents(req *runtime.GetEventsRequest, stream grpc.ServerStreamingServer[runtime.ContainerEventResponse]) error {
	ch, cancel := s.events.subscribe()
	defer cancel()
	// Headers tell the client the subscription is live: events from now on reach it.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case ev := <-ch:
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		case <-s.closed:
			return nil
		}
	}
}
