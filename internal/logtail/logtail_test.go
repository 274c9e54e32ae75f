package logtail

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLines(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "daemon.log")
	if err := os.WriteFile(log, []byte("one\ntwo\n\nthree\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{1, "three"},
		{2, "\nthree"}, // an empty line inside counts; the trailing ones do not
		{4, "one\ntwo\n\nthree"},
		{10, "one\ntwo\n\nthree"},
		{0, ""},
	} {
		if got := Lines(log, tc.n); got != tc.want {
			t.Errorf("Lines(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := Lines(filepath.Join(dir, "missing.log"), 5); got != "" {
		t.Errorf("Lines(missing file) = %q, want \"\"", got)
	}
	empty := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Lines(empty, 5); got != "" {
		t.Errorf("Lines(empty file) = %q, want \"\"", got)
	}
}
