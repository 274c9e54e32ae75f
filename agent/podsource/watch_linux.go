package podsource

import (
	"strings"

	"github.com/nodekit-dev/nodekit/internal/dirwatch"
)

// watcher reports changes in the manifest directory (fsnotify: inotify).
type watcher struct {
	w *dirwatch.Watcher
	// changes gets a value (coalesced) when a manifest may have changed
	// (dotfiles, such as editors' temporary files, do not count); it is
	// closed when the watch ends (directory deleted or moved, watch error,
	// close).
	changes <-chan struct{}
}

func newWatcher(dir string) (*watcher, error) {
	w, err := dirwatch.New(dir, func(name string) bool { return strings.HasPrefix(name, ".") })
	if err != nil {
		return nil, err
	}
	return &watcher{w: w, changes: w.Changes()}, nil
}

// watching is false once the watch has ended, also silently (the directory's
// filesystem unmounted).
func (w *watcher) watching() bool { return w.w.Watching() }

// err is why the watch ended, once changes is closed.
func (w *watcher) err() error { return w.w.Err() }

func (w *watcher) close() { w.w.Close() }
