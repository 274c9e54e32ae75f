package podsource

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	// changeMask are the events that may change the set of manifests.
	changeMask = unix.IN_CREATE | unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB |
		unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE
	// goneMask are the events after which the watch is gone.
	goneMask = unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_IGNORED | unix.IN_UNMOUNT
)

// watcher reports changes in one directory through inotify.
type watcher struct {
	f *os.File
	// changes gets a value (coalesced) when an entry of the directory may
	// have changed; it is closed when the watch ends (directory deleted or
	// moved, read error, close).
	changes chan struct{}
	done    chan struct{}
}

func newWatcher(dir string) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify init: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, changeMask|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_ONLYDIR); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "inotify_add_watch", Path: dir, Err: err}
	}
	// A non-blocking fd goes to the runtime poller, so Close wakes a
	// pending Read.
	w := &watcher{
		f:       os.NewFile(uintptr(fd), "inotify:"+dir),
		changes: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go w.read()
	return w, nil
}

func (w *watcher) read() {
	defer close(w.done)
	defer close(w.changes)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return
		}
		changed, gone := parseEvents(buf[:n])
		if changed {
			select {
			case w.changes <- struct{}{}:
			default: // one is pending already
			}
		}
		if gone {
			return
		}
	}
}

// parseEvents reads a buffer of inotify events: changed when a manifest may
// have changed (events about dotfiles are ignored), gone when the watch has
// ended.
func parseEvents(buf []byte) (changed, gone bool) {
	for len(buf) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(buf[4:8])
		nameLen := int(binary.NativeEndian.Uint32(buf[12:16]))
		end := min(unix.SizeofInotifyEvent+nameLen, len(buf))
		name := strings.TrimRight(string(buf[unix.SizeofInotifyEvent:end]), "\x00")
		buf = buf[end:]
		switch {
		case mask&unix.IN_Q_OVERFLOW != 0:
			changed = true
		case mask&goneMask != 0:
			changed, gone = true, true
		case mask&changeMask != 0 && !strings.HasPrefix(name, "."):
			changed = true
		}
	}
	return changed, gone
}

func (w *watcher) close() {
	w.f.Close()
	<-w.done
}
