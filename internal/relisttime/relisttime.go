package relisttime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nodekit-dev/nodekit/pleg"
)

// Timing is what Measure found.
type Timing struct {
	// Pods is how many pods (by their io.kubernetes.pod.uid label) the
	// runtime's sandboxes belong to.
	Pods int
	// Cold is the first relist: every pod is new, so every pod is inspected.
	Cold time.Duration
	// Warm is the mean of the warm relists that followed, nothing having
	// changed: two list calls and the diff, what a node does every second.
	Warm time.Duration
}

// Measure starts a generic PLEG on rt, relisting back to back, and times its
// first (cold) relist and the warm mean of the next warm ones (at least one).
// A relist that fails fails the measurement.
func Measure(ctx context.Context, rt pleg.Runtime, warm int) (Timing, error) {
	var t Timing
	sbs, err := rt.ListPodSandbox(ctx, nil)
	if err != nil {
		return t, fmt.Errorf("relist timing: list pods: %w", err)
	}
	uids := map[string]bool{}
	for _, sb := range sbs {
		uids[sb.GetLabels()["io.kubernetes.pod.uid"]] = true
	}
	t.Pods = len(uids)

	warm = max(warm, 1)
	rec := &recorder{want: 1 + warm, done: make(chan struct{})}
	logs := &errorLog{}
	p := pleg.NewGeneric(pleg.Options{
		Runtime:      rt,
		Metrics:      rec,
		RelistPeriod: time.Millisecond,
		EventBuffer:  1 << 16,
		Logger:       slog.New(logs),
	})
	p.Start()
	defer p.Stop()
	select {
	case <-rec.done:
	case <-ctx.Done():
		return t, fmt.Errorf("relist timing: %w", ctx.Err())
	}
	if err := logs.err(); err != nil {
		return t, fmt.Errorf("relist timing: a relist failed: %w", err)
	}
	d := rec.durations()
	t.Cold = d[0]
	var sum time.Duration
	for _, w := range d[1:] {
		sum += w
	}
	t.Warm = sum / time.Duration(len(d)-1)
	return t, nil
}

// recorder keeps the first want relist durations.
type recorder struct {
	want int
	done chan struct{}

	mu sync.Mutex
	d  []time.Duration
}

func (r *recorder) ObserveRelistDuration(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.d) == r.want {
		return
	}
	r.d = append(r.d, d)
	if len(r.d) == r.want {
		close(r.done)
	}
}

func (r *recorder) durations() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.d...)
}

func (*recorder) ObserveRelistInterval(time.Duration) {}
func (*recorder) SetLastSeen(time.Time)               {}
func (*recorder) IncEvent(pleg.EventType)             {}
func (*recorder) IncDiscardedEvent()                  {}
func (*recorder) ObserveStream(error)                 {}
func (*recorder) ObserveEventLatency(time.Duration)   {}

// errorLog is a slog.Handler that keeps the first warning or error (a relist
// or a pod's inspection that failed, an event dropped).
type errorLog struct {
	mu    sync.Mutex
	first error
}

func (*errorLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *errorLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.first == nil {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool {
			msg += " " + a.String()
			return true
		})
		h.first = errors.New(msg)
	}
	return nil
}

func (h *errorLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorLog) WithGroup(string) slog.Handler      { return h }

func (h *errorLog) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.first
}
