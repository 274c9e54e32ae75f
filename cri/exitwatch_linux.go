package cri

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// exitWatcher turns the monitors' exit records into calls of onExit, driven by
// inotify (through fsnotify, as the agent's other watchers) on the exits
// directory: a record appears there by an atomic rename, so one create event for
// a record's name means one complete exit record. No polling. A lost event (the
// kernel's queue overflowed) makes it read the whole directory again.
type exitWatcher struct {
	dir    string
	w      *fsnotify.Watcher
	onExit func(id string)
	log    *slog.Logger
}

func newExitWatcher(dir string, onExit func(id string), log *slog.Logger) (*exitWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch exits: %w", err)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch exits in %s: %w", dir, err)
	}
	return &exitWatcher{dir: dir, w: w, onExit: onExit, log: log}, nil
}

// run delivers events until close.
func (w *exitWatcher) run() {
	for {
		select {
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) {
				continue
			}
			if id, ok := exitRecordID(filepath.Base(ev.Name)); ok {
				w.onExit(id)
			}
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.rescan()
				continue
			}
			w.log.Error("exit watcher", "dir", w.dir, "err", err)
		}
	}
}

// rescan delivers every record in the directory (after a queue overflow).
func (w *exitWatcher) rescan() {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		w.log.Error("rescan exits", "dir", w.dir, "err", err)
		return
	}
	for _, e := range entries {
		if id, ok := exitRecordID(e.Name()); ok {
			w.onExit(id)
		}
	}
}

func (w *exitWatcher) close() { w.w.Close() }
