package podns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// No kinds: nothing to pin, nothing made.
func TestPinNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ns")
	p, err := Pin(Options{Dir: dir})
	if err != nil || len(p) != 0 || p.Path(Net) != "" {
		t.Fatalf("Pin without kinds: %v %v", p, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Pin without kinds made %s: %v", dir, err)
	}
}

// A kind the package does not pin is refused, naming it, before anything is
// made (no directory, no thread switched).
func TestUnknownKindRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ns")
	for name, call := range map[string]func() error{
		"Pin":   func() error { _, err := Pin(Options{Dir: dir, Kinds: []Kind{Net, "pid"}}); return err },
		"Adopt": func() error { _, err := Adopt(Options{Dir: dir, Kinds: []Kind{"mnt"}}, os.Getpid()); return err },
	} {
		err := call()
		if err == nil || !strings.Contains(err.Error(), "unknown kind") {
			t.Errorf("%s with an unknown kind: %v", name, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s with an unknown kind made %s: %v", name, dir, err)
		}
	}
}

// Unpin is idempotent: a directory that is gone, or holds no pinned file, is
// no error.
func TestUnpinNothingThere(t *testing.T) {
	if err := Unpin(filepath.Join(t.TempDir(), "gone")); err != nil {
		t.Fatal(err)
	}
	if err := Unpin(t.TempDir()); err != nil {
		t.Fatal(err)
	}
}
