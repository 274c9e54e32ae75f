package diskusage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tree makes root/{a, b (a hard link to a), sub/{c, l (a symlink)}} and
// returns root and the paths whose inodes count (b is a's).
func tree(t *testing.T) (string, []string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	sub := filepath.Join(root, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(root, "a")
	if err := os.WriteFile(a, []byte(strings.Repeat("x", 8<<10)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(a, filepath.Join(root, "b")); err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(sub, "c")
	if err := os.WriteFile(c, []byte("c"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := filepath.Join(sub, "l")
	if err := os.Symlink("c", l); err != nil {
		t.Fatal(err)
	}
	return root, []string{root, a, sub, c, l}
}

// want sums the allocated blocks of paths with lstat.
func want(t *testing.T, paths []string) Usage {
	t.Helper()
	var u Usage
	for _, p := range paths {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		u.Bytes += uint64(st.Blocks) * 512
		u.Inodes++
	}
	return u
}

func TestMeasure(t *testing.T) {
	root, counted := tree(t)
	w := want(t, counted)
	if w.Bytes < 8<<10 {
		t.Fatalf("the tree has %d bytes allocated, want at least the 8 KiB file's", w.Bytes)
	}
	for name, measure := range map[string]func(string) (Usage, error){"Measure": Measure, "MeasureStrict": MeasureStrict} {
		got, err := measure(root)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != w {
			t.Errorf("%s = %+v, want %+v (the hard link counted once)", name, got, w)
		}
	}
}

func TestMeasureMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for name, measure := range map[string]func(string) (Usage, error){"Measure": Measure, "MeasureStrict": MeasureStrict} {
		u, err := measure(missing)
		if !errors.Is(err, fs.ErrNotExist) || u != (Usage{}) {
			t.Errorf("%s(missing) = %+v, %v; want nothing and fs.ErrNotExist", name, u, err)
		}
	}
}

// TestMeasureUnreadable: an unreadable subdirectory is skipped by Measure and
// fails MeasureStrict; an unreadable dir fails both.
func TestMeasureUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Log("root reads every directory: nothing is unreadable to check")
		return
	}
	root, _ := tree(t)
	sub := filepath.Join(root, "sub")
	if err := os.Chmod(sub, 0); err != nil {
		t.Fatal(err)
	}
	// Best effort: if it fails, t.TempDir's removal fails and says so.
	t.Cleanup(func() { _ = os.Chmod(sub, 0o755) })
	if u, err := Measure(root); err != nil || u.Inodes != 3 { // root, a (b), sub itself
		t.Errorf("Measure = %+v, %v; want root, a (b), sub and no error", u, err)
	}
	if _, err := MeasureStrict(root); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("MeasureStrict: err = %v, want fs.ErrPermission", err)
	}
	if _, err := Measure(sub); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Measure(unreadable dir): err = %v, want fs.ErrPermission", err)
	}
}
