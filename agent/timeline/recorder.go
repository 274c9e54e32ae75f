package timeline

import (
	"cmp"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Defaults of Options: with them 250 pods with full rings hold under 16 MiB.
const (
	DefaultEntries    = 200
	DefaultPodBytes   = 24 << 10
	DefaultMaxMessage = 1 << 10
	DefaultRetention  = time.Hour
	DefaultMaxGone    = 100
)

// truncated ends a Message or Error that was cut.
const truncated = "…[truncated]"

// Options configure a Recorder; zero fields take the defaults.
type Options struct {
	// Entries is how many entries a pod's ring holds.
	Entries int
	// PodBytes bounds the text (every string of every entry) a pod's ring
	// holds: the oldest entries go while it would be over.
	PodBytes int
	// MaxMessage caps each string of an entry, in bytes; a longer one is cut
	// at a character boundary and ends with "…[truncated]".
	MaxMessage int
	// Retention is how long a pod's timeline stays after Forget; MaxGone is
	// how many gone pods are kept at most (the oldest go first).
	Retention time.Duration
	MaxGone   int
	// Clock stamps entries recorded without a time; default the real clock.
	Clock clock.PassiveClock
}

// Recorder keeps the timelines of the pods it was given with Add. It is safe
// for concurrent use; a nil *Recorder records nothing and finds nothing.
type Recorder struct {
	o Options

	mu   sync.RWMutex
	pods map[types.UID]*ring
	gone int // how many pods in pods are gone
}

// New returns a Recorder.
func New(o Options) *Recorder {
	if o.Entries <= 0 {
		o.Entries = DefaultEntries
	}
	if o.PodBytes <= 0 {
		o.PodBytes = DefaultPodBytes
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	o.MaxMessage = max(o.MaxMessage, 2*len(truncated))
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxGone <= 0 {
		o.MaxGone = DefaultMaxGone
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return &Recorder{o: o, pods: map[types.UID]*ring{}}
}

// Add starts recording the pod, or takes it back if it was gone (the same UID
// added again), and keeps its namespace and name. Entries for a pod are
// recorded only once it was added.
func (r *Recorder) Add(pod *v1.Pod) {
	if r == nil || pod == nil {
		return
	}
	r.mu.RLock()
	p := r.pods[pod.UID]
	r.mu.RUnlock()
	if p != nil {
		p.mu.Lock()
		same := p.gone == 0 && p.namespace == pod.Namespace && p.name == pod.Name
		p.mu.Unlock()
		if same {
			return
		}
	}
	now := r.o.Clock.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	p = r.pods[pod.UID]
	if p == nil {
		p = &ring{max: r.o.Entries, maxBytes: r.o.PodBytes, uid: pod.UID}
		r.pods[pod.UID] = p
	}
	p.mu.Lock()
	if p.gone != 0 {
		r.gone--
	}
	p.namespace, p.name, p.gone, p.added = pod.Namespace, pod.Name, 0, now
	p.mu.Unlock()
}

// Forget marks the pod gone: it left the node. Its timeline stays readable
// (and recordable: the last CRI calls of its cleanup) for Options.Retention.
func (r *Recorder) Forget(uid types.UID) {
	if r == nil {
		return
	}
	now := r.o.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.pods[uid]; p != nil {
		p.mu.Lock()
		if p.gone == 0 {
			p.gone = now.UnixNano()
			r.gone++
		}
		p.mu.Unlock()
	}
	r.prune(now)
}

// prune drops the gone pods past their retention, then the oldest gone pods
// beyond MaxGone. r.mu must be held (a ring's gone, added, namespace and name
// change with both r.mu and its own lock held, so either lock reads them).
func (r *Recorder) prune(now time.Time) {
	if r.gone == 0 {
		return
	}
	cutoff := now.Add(-r.o.Retention).UnixNano()
	var gone []*ring
	for uid, p := range r.pods {
		switch {
		case p.gone == 0:
		case p.gone <= cutoff:
			delete(r.pods, uid)
			r.gone--
		default:
			gone = append(gone, p)
		}
	}
	if extra := len(gone) - r.o.MaxGone; extra > 0 {
		slices.SortFunc(gone, func(a, b *ring) int { return cmp.Compare(a.gone, b.gone) })
		for _, p := range gone[:extra] {
			delete(r.pods, p.uid)
			r.gone--
		}
	}
}

// Record adds e to the timeline of the pod uid, if the pod was added.
func (r *Recorder) Record(uid types.UID, e Entry) { r.Pod(uid).Record(e) }

// Pod returns the Log of the pod uid: a zero Log (recording nothing) if the
// pod was not added.
func (r *Recorder) Pod(uid types.UID) Log {
	if r == nil {
		return Log{}
	}
	r.mu.RLock()
	p := r.pods[uid]
	r.mu.RUnlock()
	if p == nil {
		return Log{}
	}
	return Log{r: r, p: p}
}

// Get returns the timeline of the pod uid.
func (r *Recorder) Get(uid types.UID) (*Timeline, bool) {
	if r == nil {
		return nil, false
	}
	r.expire()
	r.mu.RLock()
	p := r.pods[uid]
	r.mu.RUnlock()
	if p == nil {
		return nil, false
	}
	return p.timeline(), true
}

// PodTimeline returns the timeline of the pod namespace/name: of its newest
// instance (the one last added) when several UIDs had that name.
func (r *Recorder) PodTimeline(namespace, name string) (*Timeline, bool) {
	if r == nil {
		return nil, false
	}
	r.expire()
	var best *ring
	r.mu.RLock()
	for _, p := range r.pods {
		if p.namespace == namespace && p.name == name && (best == nil || p.added > best.added) {
			best = p
		}
	}
	r.mu.RUnlock()
	if best == nil {
		return nil, false
	}
	return best.timeline(), true
}

// expire drops what is past its retention before a lookup.
func (r *Recorder) expire() {
	r.mu.RLock()
	gone := r.gone
	r.mu.RUnlock()
	if gone == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(r.o.Clock.Now())
}

// entry turns e into what a ring stores: stamped, capped.
func (r *Recorder) entry(e *Entry) entry {
	at := e.Time
	if at.IsZero() {
		at = r.o.Clock.Now()
	}
	took := e.Took
	if took == 0 && e.Duration != "" {
		took, _ = time.ParseDuration(e.Duration)
	}
	c := r.o.MaxMessage
	return entry{
		at: at.UnixNano(), took: int64(took),
		kind: Kind(capText(string(e.Kind), c)), container: capText(e.Container, c), what: capText(e.What, c),
		reason: capText(e.Reason, c), message: capText(e.Message, c), errText: capText(e.Error, c), event: capText(e.Event, c),
	}
}

// capText cuts s to at most n bytes, at a character boundary, ending with
// the truncated mark. The result is a new string: a long s is not kept alive
// by it.
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len(truncated)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncated
}
