package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, content := range []string{"first", "second, longer content", "3"} {
		if err := WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Fatalf("content = %q, want %q", got, content)
		}
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only state.json", names)
	}
}

func TestWriteFileFailureKeepsOldContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory in the way of the rename makes the write fail after the temp file
	// was written; the old file must be untouched and the temp file gone.
	bad := filepath.Join(dir, "sub")
	if err := os.MkdirAll(filepath.Join(bad, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(bad, []byte("new"), 0o644); err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	got, _ := os.ReadFile(p)
	if string(got) != "old" {
		t.Fatalf("old file changed to %q", got)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temp file %s left behind", e.Name())
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.json")
	type rec struct {
		ID   string
		Exit int
	}
	if err := WriteJSON(p, rec{"abc", 137}, 0o644); err != nil {
		t.Fatal(err)
	}
	var got rec
	if err := ReadJSON(p, &got); err != nil {
		t.Fatal(err)
	}
	if got != (rec{"abc", 137}) {
		t.Fatalf("got %+v", got)
	}
	if err := os.WriteFile(p, []byte("{torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReadJSON(p, &got); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("decode error %v does not name the file", err)
	}
}

func TestReplaceIsAtomicWithoutSync(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "exit.json")
	if err := ReplaceJSON(p, map[string]int{"exitCode": 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Replace(p, []byte(`{"exitCode":7}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := ReadJSON(p, &got); err != nil || got["exitCode"] != 7 {
		t.Fatalf("after Replace: %v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d entries, want only the file", len(entries))
	}
}
