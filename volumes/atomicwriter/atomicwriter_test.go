package atomicwriter

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func read(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") || e.Name() == dataDirName {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestWriteUpdateRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	w := New(dir)
	changed, err := w.Write(map[string]File{
		"config.yaml":  {Data: []byte("a: 1\n")},
		"certs/ca.crt": {Data: []byte("CA"), Mode: 0o400},
	})
	if err != nil || !changed {
		t.Fatalf("first write: changed %v, err %v", changed, err)
	}
	if got := read(t, dir, "config.yaml"); got != "a: 1\n" {
		t.Errorf("config.yaml = %q", got)
	}
	if got := read(t, dir, "certs/ca.crt"); got != "CA" {
		t.Errorf("certs/ca.crt = %q", got)
	}
	if target, err := os.Readlink(filepath.Join(dir, "certs")); err != nil || target != "..data/certs" {
		t.Errorf("certs is not a symlink into ..data: %q %v", target, err)
	}
	info, err := os.Stat(filepath.Join(dir, "certs/ca.crt"))
	if err != nil || info.Mode().Perm() != 0o400 {
		t.Errorf("ca.crt mode %v, %v", info.Mode().Perm(), err)
	}
	first, _ := os.Readlink(filepath.Join(dir, dataDirName))

	// The same payload again: nothing written.
	if changed, err := w.Write(map[string]File{"config.yaml": {Data: []byte("a: 1\n")}, "certs/ca.crt": {Data: []byte("CA"), Mode: 0o400}}); err != nil || changed {
		t.Errorf("unchanged payload: changed %v, err %v", changed, err)
	}
	// A new version: a key changed, one removed, one added; the old version gone.
	if changed, err := w.Write(map[string]File{"config.yaml": {Data: []byte("a: 2\n")}, "extra": {Data: []byte("x")}}); err != nil || !changed {
		t.Fatalf("update: changed %v, err %v", changed, err)
	}
	if got := read(t, dir, "config.yaml"); got != "a: 2\n" {
		t.Errorf("config.yaml after update = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "certs")); !os.IsNotExist(err) {
		t.Errorf("removed key still visible: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Errorf("old version %s left: %v", first, err)
	}
	if got, want := names(t, dir), []string{dataDirName, "config.yaml", "extra"}; !slices.Equal(got, want) {
		t.Errorf("directory holds %v, want %v", got, want)
	}
}

func TestWriteRefusesBadPaths(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	w := New(dir)
	for _, p := range []string{"", "/etc/passwd", "../escape", "a/../../b", "..data", "a//b", "./a", strings.Repeat("x", 256)} {
		if _, err := w.Write(map[string]File{"ok": {Data: []byte("1")}, p: {Data: []byte("x")}}); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused payload wrote something: %v", err)
	}
}

// A reader that keeps reading two files while versions switch always sees both
// from the same version.
func TestReadersNeverSeeMixedVersions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	w := New(dir)
	version := func(i int) map[string]File {
		v := []byte(strings.Repeat("v", i%7+1))
		return map[string]File{"a": {Data: v}, "b": {Data: v}}
	}
	if _, err := w.Write(version(0)); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var mixed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			// Resolve ..data once, then read both files of that version.
			ts, err := os.Readlink(filepath.Join(dir, dataDirName))
			if err != nil {
				continue
			}
			a, errA := os.ReadFile(filepath.Join(dir, ts, "a"))
			b, errB := os.ReadFile(filepath.Join(dir, ts, "b"))
			if errA == nil && errB == nil && string(a) != string(b) {
				mixed.Add(1)
			}
		}
	}()
	for i := 1; i <= 200; i++ {
		if _, err := w.Write(version(i)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := mixed.Load(); n > 0 {
		t.Errorf("%d reads saw two versions mixed", n)
	}
}
