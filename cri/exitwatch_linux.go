package cri

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// exitWatcher turns the monitors' exit records into calls of onExit, driven by
// inotify on the exits directory: a record appears there by an atomic rename, so one
// IN_MOVED_TO event means one complete exit record. No polling.
type exitWatcher struct {
	dir    string
	f      *os.File
	onExit func(id string)
	log    *slog.Logger
}

func newExitWatcher(dir string, onExit func(id string), log *slog.Logger) (*exitWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch exits: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch exits in %s: %w", dir, err)
	}
	return &exitWatcher{dir: dir, f: os.NewFile(uintptr(fd), "inotify"), onExit: onExit, log: log}, nil
}

// run delivers events until close.
func (w *exitWatcher) run() {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.log.Error("exit watcher stopped", "err", err)
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				w.rescan()
				continue
			}
			name := string(bytes.TrimRight(nameBytes, "\x00"))
			if id, ok := exitRecordID(name); ok {
				w.onExit(id)
			}
		}
	}
}

// rescan delivers every record in the directory (after a queue overflow).
func (w *exitWatcher) rescan() {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		w.log.Error("rescan exits", "err", err)
		return
	}
	for _, e := range entries {
		if id, ok := exitRecordID(e.Name()); ok {
			w.onExit(id)
		}
	}
}

func (w *exitWatcher) close() { w.f.Close() }
