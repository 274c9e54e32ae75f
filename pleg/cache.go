package pleg

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Cache holds the latest runtime status of each pod, written by a PLEG and read by
// the agent's pod workers. GetNewerThan lets a worker wait until the cache holds a
// status at least as new as the event that woke it.
type Cache interface {
	// Get returns the cached status of pod id (an empty status with only ID set if
	// none is known) and the error the last inspection of the pod returned.
	Get(id types.UID) (*PodStatus, error)
	// GetNewerThan blocks until the status of pod id is newer than minTime (or the
	// whole cache was refreshed after minTime), then returns it.
	GetNewerThan(id types.UID, minTime time.Time) (*PodStatus, error)
	// GetIfNewerThan returns the cached status of pod id when it was read (or
	// brought by an event) after minTime; ok is false otherwise, without
	// waiting (the caller inspects the runtime itself). Stricter than
	// GetNewerThan: a refresh of the whole cache (UpdateTime) after minTime
	// does not do, except for the zero minTime, because an evented PLEG marks
	// the cache current without proof that the runtime's events of before
	// have all arrived — under load they lag, and a pod worker trusting the
	// refresh would act again on a state older than its own last change.
	GetIfNewerThan(id types.UID, minTime time.Time) (status *PodStatus, ok bool, err error)
	// Set records the status (or inspection error) of pod id read at timestamp.
	// An older timestamp than the cached one is ignored; it reports whether the
	// entry changed.
	Set(id types.UID, status *PodStatus, err error, timestamp time.Time) bool
	// Delete forgets pod id.
	Delete(id types.UID)
	// UpdateTime says every pod's status is known to be current as of t (a relist
	// found nothing changed), waking waiters of older times.
	UpdateTime(t time.Time)
}

type cacheEntry struct {
	status   *PodStatus
	err      error
	modified time.Time
}

type cache struct {
	mu        sync.Mutex
	pods      map[types.UID]*cacheEntry
	timestamp time.Time // the whole cache is current as of this time
	cond      *sync.Cond
}

// NewCache returns an empty Cache.
func NewCache() Cache {
	c := &cache{pods: map[types.UID]*cacheEntry{}}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *cache) Get(id types.UID) (*PodStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.get(id)
	return e.status, e.err
}

func (c *cache) GetNewerThan(id types.UID, minTime time.Time) (*PodStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		e := c.get(id)
		if e.modified.After(minTime) || c.timestamp.After(minTime) {
			return e.status, e.err
		}
		c.cond.Wait()
	}
}

func (c *cache) GetIfNewerThan(id types.UID, minTime time.Time) (*PodStatus, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.get(id)
	if e.modified.After(minTime) || (minTime.IsZero() && !c.timestamp.IsZero()) {
		return e.status, true, e.err
	}
	return nil, false, nil
}

func (c *cache) Set(id types.UID, status *PodStatus, err error, timestamp time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.pods[id]; ok && e.modified.After(timestamp) {
		return false
	}
	c.pods[id] = &cacheEntry{status: status, err: err, modified: timestamp}
	c.cond.Broadcast()
	return true
}

func (c *cache) Delete(id types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pods, id)
}

func (c *cache) UpdateTime(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.timestamp) {
		c.timestamp = t
	}
	c.cond.Broadcast()
}

// get returns the entry of id, or an empty one; c.mu is held.
func (c *cache) get(id types.UID) *cacheEntry {
	if e, ok := c.pods[id]; ok {
		return e
	}
	return &cacheEntry{status: &PodStatus{ID: id}}
}
