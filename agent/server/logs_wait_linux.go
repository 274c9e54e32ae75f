package server

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// inotifyWaiter wakes on any change in the log file's directory: writes to
// the file, and the rename and create of a rotation.
type inotifyWaiter struct {
	f       *os.File
	changed chan struct{}
	done    chan struct{}
}

// newChangeWaiter watches path's directory with inotify, or falls back to
// polling when that fails.
func newChangeWaiter(path string) changeWaiter {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return pollWaiter{}
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
		unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), mask); err != nil {
		unix.Close(fd)
		return pollWaiter{}
	}
	w := &inotifyWaiter{
		f:       os.NewFile(uintptr(fd), "inotify"), // non-blocking: reads go through the poller, Close ends them
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go w.read()
	return w
}

func (w *inotifyWaiter) read() {
	defer close(w.done)
	buf := make([]byte, 4096)
	for {
		if _, err := w.f.Read(buf); err != nil {
			return
		}
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}

func (w *inotifyWaiter) wait(ctx context.Context, period time.Duration) error {
	t := time.NewTimer(period)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.changed:
		return nil
	case <-t.C:
		return nil
	}
}

func (w *inotifyWaiter) close() {
	w.f.Close()
	<-w.done
}
