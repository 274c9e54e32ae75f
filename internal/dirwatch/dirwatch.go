package dirwatch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/fsnotify/fsnotify"
)

// ErrGone ends a watch whose directory was removed or moved away.
var ErrGone = errors.New("directory removed or moved away")

// Watcher reports changes in one directory. Close it when done.
type Watcher struct {
	dir     string
	ignore  func(name string) bool
	fw      *fsnotify.Watcher
	changes chan struct{}
	done    chan struct{}
	err     error // why the watch ended; written before changes is closed
}

// New watches dir, which must be a directory. ignore, if not nil, is given
// the base name of each changed entry and returns true for those that do not
// count (such as dotfiles).
func New(dir string, ignore func(name string) bool) (*Watcher, error) {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("watch: %w", &fs.PathError{Op: "stat", Path: dir, Err: syscall.ENOTDIR})
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	if err := fw.Add(dir); err != nil {
		fw.Close()
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	w := &Watcher{
		dir:     dir,
		ignore:  ignore,
		fw:      fw,
		changes: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go w.run()
	return w, nil
}

// Changes gets a value when an entry of the directory may have changed (one
// pending value stands for any number of changes). It is closed when the
// watch ends, after which Err says why.
func (w *Watcher) Changes() <-chan struct{} { return w.changes }

// Err is why the watch ended once Changes is closed: ErrGone, the watch's
// failure, or nil after Close; nil while it runs.
func (w *Watcher) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// Watching reports whether the directory is still watched. It is false once
// the watch has ended, and also when the kernel dropped the watch without an
// event fsnotify passes on (the filesystem was unmounted): then the caller
// watches again as if the watch had ended.
func (w *Watcher) Watching() bool {
	select {
	case <-w.done:
		return false
	default:
		return len(w.fw.WatchList()) > 0
	}
}

// Close ends the watch and waits for its goroutine.
func (w *Watcher) Close() {
	w.fw.Close()
	<-w.done
}

func (w *Watcher) run() {
	// done first, so Err answers once a receiver sees changes closed
	defer close(w.changes)
	defer close(w.done)
	for {
		select {
		case ev, ok := <-w.fw.Events:
			if !ok {
				return // closed
			}
			changed, gone := w.classify(ev)
			if changed {
				w.notify()
			}
			if gone {
				w.err = fmt.Errorf("watch %s: %w", w.dir, ErrGone)
				return
			}
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.notify() // events were lost: anything may have changed
				continue
			}
			w.err = fmt.Errorf("watch %s: %w", w.dir, err)
			return
		}
	}
}

// classify says whether ev is a change that counts (of the directory itself
// or of an entry not ignored), and whether it ended the watch (the directory
// was removed or moved away).
func (w *Watcher) classify(ev fsnotify.Event) (changed, gone bool) {
	if filepath.Clean(ev.Name) == w.dir { // the directory itself (say, chmod)
		return true, ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)
	}
	if w.ignore != nil && w.ignore(filepath.Base(ev.Name)) {
		return false, false
	}
	return true, false
}

func (w *Watcher) notify() {
	select {
	case w.changes <- struct{}{}:
	default: // one is pending already
	}
}
