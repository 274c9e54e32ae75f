package dirwatch

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fsnotify/fsnotify"
)

func TestClassify(t *testing.T) {
	w := &Watcher{dir: "/m", ignore: func(name string) bool { return strings.HasPrefix(name, ".") }}
	for _, tc := range []struct {
		name          string
		ev            fsnotify.Event
		changed, gone bool
	}{
		{"entry created", fsnotify.Event{Name: "/m/a.yaml", Op: fsnotify.Create}, true, false},
		{"entry written", fsnotify.Event{Name: "/m/a.yaml", Op: fsnotify.Write}, true, false},
		{"entry removed", fsnotify.Event{Name: "/m/a.yaml", Op: fsnotify.Remove}, true, false},
		{"entry renamed away", fsnotify.Event{Name: "/m/a.yaml", Op: fsnotify.Rename}, true, false},
		{"entry chmod", fsnotify.Event{Name: "/m/a.yaml", Op: fsnotify.Chmod}, true, false},
		{"ignored entry", fsnotify.Event{Name: "/m/.a.yaml.swp", Op: fsnotify.Create}, false, false},
		{"ignored entry renamed away", fsnotify.Event{Name: "/m/.tmp", Op: fsnotify.Rename}, false, false},
		{"directory chmod", fsnotify.Event{Name: "/m", Op: fsnotify.Chmod}, true, false},
		{"directory removed", fsnotify.Event{Name: "/m", Op: fsnotify.Remove}, true, true},
		{"directory moved away", fsnotify.Event{Name: "/m/", Op: fsnotify.Rename}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed, gone := w.classify(tc.ev)
			if changed != tc.changed || gone != tc.gone {
				t.Errorf("classify(%v) = %v, %v; want %v, %v", tc.ev, changed, gone, tc.changed, tc.gone)
			}
		})
	}

	all := &Watcher{dir: "/m"}
	if changed, _ := all.classify(fsnotify.Event{Name: "/m/.hidden", Op: fsnotify.Create}); !changed {
		t.Error("without an ignore function a dotfile counts")
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(filepath.Join(dir, "missing"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("New(missing directory): err = %v, want fs.ErrNotExist", err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(file, nil); !errors.Is(err, syscall.ENOTDIR) || !strings.Contains(err.Error(), file) {
		t.Errorf("New(a file): err = %v, want ENOTDIR naming the file", err)
	}
}

func TestCloseEndsTheWatch(t *testing.T) {
	w, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Watching() || w.Err() != nil {
		t.Fatalf("new watch: Watching %v, Err %v", w.Watching(), w.Err())
	}
	w.Close()
	if _, ok := <-w.Changes(); ok {
		t.Error("Changes delivered a value after Close on an unchanged directory")
	}
	if _, ok := <-w.Changes(); ok {
		t.Error("Changes not closed after Close")
	}
	if w.Watching() || w.Err() != nil {
		t.Errorf("after Close: Watching %v, Err %v; want false, nil", w.Watching(), w.Err())
	}
}
