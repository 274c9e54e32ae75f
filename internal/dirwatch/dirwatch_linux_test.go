package dirwatch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// watch starts a watch of a new directory, closed at the end of the test.
func watch(t *testing.T) (string, *Watcher) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := New(dir, func(name string) bool { return strings.HasPrefix(name, ".") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return dir, w
}

// drain takes a pending notification, if any.
func drain(w *Watcher) {
	select {
	case <-w.Changes():
	default:
	}
}

// expectChange waits (with a deadline) for a notification after op.
func expectChange(t *testing.T, w *Watcher, what string, op func() error) {
	t.Helper()
	drain(w)
	if err := op(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	select {
	case _, ok := <-w.Changes():
		if !ok {
			t.Fatalf("%s: the watch ended: %v", what, w.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no change notified within 10s", what)
	}
}

// expectEnd waits (with a deadline) for the watch to end after op, and
// returns why.
func expectEnd(t *testing.T, w *Watcher, what string, op func() error) error {
	t.Helper()
	if err := op(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-w.Changes():
			if !ok {
				if w.Watching() {
					t.Errorf("%s: Watching after the watch ended", what)
				}
				return w.Err()
			}
		case <-deadline:
			t.Fatalf("%s: the watch did not end within 10s", what)
		}
	}
}

func TestEntryChanges(t *testing.T) {
	dir, w := watch(t)
	file := filepath.Join(dir, "a.yaml")
	expectChange(t, w, "create", func() error { return os.WriteFile(file, []byte("a"), 0o644) })
	expectChange(t, w, "append", func() error {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteString("b")
		return errors.Join(err, f.Close())
	})
	expectChange(t, w, "chmod", func() error { return os.Chmod(file, 0o600) })
	// an atomic write: the temporary dotfile is ignored, the rename counts
	tmp := filepath.Join(dir, ".a.yaml.tmp")
	if err := os.WriteFile(tmp, []byte("c"), 0o644); err != nil {
		t.Fatal(err)
	}
	expectChange(t, w, "rename into place", func() error { return os.Rename(tmp, file) })
	// a rotation: renamed away, then created again
	expectChange(t, w, "rename away", func() error { return os.Rename(file, file+".1") })
	expectChange(t, w, "create again", func() error { return os.WriteFile(file, nil, 0o644) })
	expectChange(t, w, "remove", func() error { return os.Remove(file) })
	if !w.Watching() || w.Err() != nil {
		t.Errorf("Watching %v, Err %v; want true, nil", w.Watching(), w.Err())
	}
}

func TestDirectoryRemoved(t *testing.T) {
	dir, w := watch(t)
	err := expectEnd(t, w, "remove the directory", func() error { return os.Remove(dir) })
	if !errors.Is(err, ErrGone) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Err = %v, want ErrGone naming the directory", err)
	}
}

func TestDirectoryMovedAway(t *testing.T) {
	dir, w := watch(t)
	err := expectEnd(t, w, "move the directory", func() error { return os.Rename(dir, dir+".old") })
	if !errors.Is(err, ErrGone) {
		t.Errorf("Err = %v, want ErrGone", err)
	}
}
