package pleg

import (
	"context"
	"time"
)

// RelistTiming is what MeasureRelist found.
type RelistTiming struct {
	// Pods is how many pods (by io.kubernetes.pod.uid label) the runtime holds.
	Pods int
	// Cold is the first relist: every pod is new, so every pod is inspected.
	Cold time.Duration
	// Warm is the mean of the relists that followed with nothing changed: two
	// list calls and the diff, what a node relists every second.
	Warm time.Duration
}

// MeasureRelist times generic relists of o.Runtime (o as for NewGeneric; its
// Clock is not used for the timing) without starting a PLEG: one cold relist into
// o.Cache, then warm relists, n of them (at least one). Events are discarded. It
// lets a benchmark measure relist duration against a real runtime.
func MeasureRelist(ctx context.Context, o Options, n int) (RelistTiming, error) {
	r := newRelister(o.withDefaults())
	done := make(chan struct{})
	defer close(done)
	go func() { // drain
		for {
			select {
			case <-r.events:
			case <-done:
				return
			}
		}
	}()
	var t RelistTiming
	start := time.Now()
	if err := r.relist(ctx); err != nil {
		return t, err
	}
	t.Cold = time.Since(start)
	t.Pods = len(r.records)
	n = max(n, 1)
	start = time.Now()
	for range n {
		if err := r.relist(ctx); err != nil {
			return t, err
		}
	}
	t.Warm = time.Since(start) / time.Duration(n)
	return t, nil
}
