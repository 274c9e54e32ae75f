//go:build !linux

package podsource

import (
	"errors"
	"fmt"
)

// watcher is only implemented on Linux; elsewhere the periodic rescan alone
// finds changes.
type watcher struct {
	changes chan struct{}
}

func newWatcher(dir string) (*watcher, error) {
	return nil, fmt.Errorf("watch %s: %w", dir, errors.ErrUnsupported)
}

func (w *watcher) watching() bool { return false }

func (w *watcher) err() error { return nil }

func (w *watcher) close() {}
