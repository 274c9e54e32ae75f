package atomicwriter

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/nodekit-dev/nodekit/internal/testenv"
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

// TestStaleVersionRemoved: a version directory a writer killed mid-write left
// behind (never published) goes at the next write.
func TestStaleVersionRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	w := New(dir)
	if _, err := w.Write(map[string]File{"k": {Data: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "..2026_01_01_00_00_00.123")
	if err := os.MkdirAll(filepath.Join(stale, "half"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(map[string]File{"k": {Data: []byte("2")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale version left: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	versions := 0
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "..") {
			versions++
		}
	}
	if versions != 1 {
		t.Errorf("%d version directories, want 1", versions)
	}
}

// TestFSGroup: with an fsGroup every file is group-owned and group-readable
// and directories carry the setgid bit, before ..data switches; an unchanged
// payload with the same group writes nothing.
func TestFSGroup(t *testing.T) {
	testenv.RequireRoot(t) // chown to another group
	dir := filepath.Join(t.TempDir(), "vol")
	gid := int64(4321)
	w := New(dir).WithFSGroup(&gid)
	payload := map[string]File{"a/b": {Data: []byte("x"), Mode: 0o400}}
	if _, err := w.Write(payload); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "a/b"))
	if err != nil || fi.Mode().Perm() != 0o440 || fi.Sys().(*syscall.Stat_t).Gid != 4321 {
		t.Fatalf("file %v gid %v: want 0440 group 4321 (%v)", fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid, err)
	}
	di, _ := os.Stat(filepath.Join(dir, "a"))
	if di.Mode()&os.ModeSetgid == 0 || di.Sys().(*syscall.Stat_t).Gid != 4321 {
		t.Errorf("directory %v: want setgid group 4321", di.Mode())
	}
	if changed, err := w.Write(payload); err != nil || changed {
		t.Errorf("unchanged payload with fsGroup: changed %v, %v", changed, err)
	}
}
