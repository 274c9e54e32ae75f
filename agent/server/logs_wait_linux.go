package server

import (
	"context"
	"path/filepath"
	"time"

	"github.com/nodekit-dev/nodekit/internal/dirwatch"
)

// dirWaiter wakes on any change in the log file's directory: writes to the
// file, and the rename and create of a rotation.
type dirWaiter struct {
	w       *dirwatch.Watcher
	changes <-chan struct{} // nil once the watch ended: then only the period wakes
}

// newChangeWaiter watches path's directory (fsnotify: inotify), or falls
// back to polling when that fails.
func newChangeWaiter(path string) changeWaiter {
	w, err := dirwatch.New(filepath.Dir(path), nil)
	if err != nil {
		return pollWaiter{}
	}
	return &dirWaiter{w: w, changes: w.Changes()}
}

func (w *dirWaiter) wait(ctx context.Context, period time.Duration) error {
	t := time.NewTimer(period)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case _, ok := <-w.changes:
		if !ok { // the directory went away: poll from now on
			w.changes = nil
		}
		return nil
	case <-t.C:
		return nil
	}
}

func (w *dirWaiter) close() { w.w.Close() }
