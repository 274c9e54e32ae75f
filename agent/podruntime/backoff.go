package podruntime

import (
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// BackOff is a per-key exponential back-off, the kubelet's flowcontrol.Backoff
// without jitter: the first delay is initial, each further one doubles up to max,
// and a key whose last event is more than 2×max after its last update starts
// over (for crash loops: a container that ran for 10 minutes is forgiven).
type BackOff struct {
	clock        clock.PassiveClock
	initial, max time.Duration

	mu      sync.Mutex
	entries map[string]*backOffEntry
}

type backOffEntry struct {
	delay      time.Duration
	lastUpdate time.Time
}

// NewBackOff returns a back-off starting at initial and capped at max. A nil
// clock is the real one.
func NewBackOff(initial, max time.Duration, c clock.PassiveClock) *BackOff {
	if c == nil {
		c = clock.RealClock{}
	}
	return &BackOff{clock: c, initial: initial, max: max, entries: map[string]*backOffEntry{}}
}

// next records an event of key at eventTime: the delay starts at initial, or
// doubles if the previous event is recent.
func (b *BackOff) next(key string, eventTime time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, eventTime) {
		e = &backOffEntry{delay: b.initial}
		b.entries[key] = e
	} else {
		e.delay = min(2*e.delay, b.max)
	}
	e.lastUpdate = b.clock.Now()
}

// remainingSince returns how long key stays in back-off counting from
// eventTime (a container's exit): 0 when it is not in back-off.
func (b *BackOff) remainingSince(key string, eventTime time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, eventTime) {
		return 0
	}
	return max(0, e.delay-b.clock.Since(eventTime))
}

// remainingSinceUpdate returns how long key stays in back-off counting from its
// last update (a failed image pull): 0 when it is not in back-off.
func (b *BackOff) remainingSinceUpdate(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok {
		return 0
	}
	return max(0, e.delay-b.clock.Since(e.lastUpdate))
}

// delay returns the current delay of key (0 if unknown).
func (b *BackOff) delay(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok {
		return e.delay
	}
	return 0
}

func (b *BackOff) expired(e *backOffEntry, eventTime time.Time) bool {
	return eventTime.Sub(e.lastUpdate) > 2*b.max
}

// gc forgets keys not updated for 2×max.
func (b *BackOff) gc() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	for k, e := range b.entries {
		if now.Sub(e.lastUpdate) > 2*b.max {
			delete(b.entries, k)
		}
	}
}

// forget drops every key containing s (a pod UID).
func (b *BackOff) forget(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if strings.Contains(k, s) {
			delete(b.entries, k)
		}
	}
}
