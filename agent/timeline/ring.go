package timeline

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// entry is an Entry as a ring stores it: times as nanoseconds, no Duration
// text (128 bytes against Entry's 160; a full ring of 200 is 25 KiB).
type entry struct {
	at, took                                         int64
	kind                                             Kind
	container, what, reason, message, errText, event string
}

func (e *entry) size() int {
	return len(e.kind) + len(e.container) + len(e.what) + len(e.reason) + len(e.message) + len(e.errText) + len(e.event)
}

func (e *entry) export() Entry {
	out := Entry{
		Time: time.Unix(0, e.at).UTC(), Kind: e.kind, Container: e.container, What: e.what,
		Reason: e.reason, Message: e.message, Error: e.errText, Event: e.event, Took: time.Duration(e.took),
	}
	if e.took != 0 {
		out.Duration = out.Took.String()
	}
	return out
}

// ring is one pod's timeline: a circular buffer of at most max entries and
// maxBytes of text, grown as entries come.
type ring struct {
	max, maxBytes int

	mu                   sync.Mutex
	namespace, name      string
	uid                  types.UID
	added                int64 // last Add, for "the newest instance"
	gone                 int64 // when Forget was called; 0 while the pod is here
	buf                  []entry
	head, n, bytes, drop int
}

// push appends e, letting the oldest entries go while the ring is over its
// bounds.
func (r *ring) push(e *entry) {
	size := e.size()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.n > 0 && (r.n == r.max || r.bytes+size > r.maxBytes) {
		r.pop()
	}
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = *e
	r.n++
	r.bytes += size
}

// pop drops the oldest entry. r.mu must be held.
func (r *ring) pop() {
	old := &r.buf[r.head]
	r.bytes -= old.size()
	*old = entry{} // its strings may go
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.drop++
}

// grow makes room for more entries, doubling up to max. r.mu must be held.
func (r *ring) grow() {
	size := min(r.max, max(8, 2*len(r.buf)))
	buf := make([]entry, size)
	for i := range r.n {
		buf[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = buf, 0
}

// timeline copies the ring out.
func (r *ring) timeline() *Timeline {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &Timeline{Namespace: r.namespace, Name: r.name, UID: r.uid, Dropped: r.drop, Entries: make([]Entry, 0, r.n)}
	for i := range r.n {
		t.Entries = append(t.Entries, r.buf[(r.head+i)%len(r.buf)].export())
	}
	if r.gone != 0 {
		g := time.Unix(0, r.gone).UTC()
		t.Gone = &g
	}
	return t
}
