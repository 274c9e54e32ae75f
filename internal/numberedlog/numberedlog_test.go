package numberedlog_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/nodekit-dev/nodekit/internal/numberedlog"
)

func TestRead(t *testing.T) {
	const ts = "2026-12-08T03:00:00.000000001Z "
	log := ts + "stdout F line 1\n" +
		ts + "stderr F line 7\n" + // another stream: ignored
		ts + "stdout P li\n" + ts + "stdout F ne 2\n" + // joined
		ts + "stdout F hello\n" + // not numbered
		"torn record\n" +
		ts + "stdout F line 5\n" +
		ts + "stdout F line 4\n" +
		ts + "stdout F line 6" // being written
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := numberedlog.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	want := numberedlog.Log{Last: 5, Gaps: []numberedlog.Gap{{After: 2, Got: 5}, {After: 5, Got: 4}}, Malformed: 1}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("got %+v, want %+v", l, want)
	}
	if n := l.Lost(0); n != 2 {
		t.Fatalf("Lost(0) = %d, want 2 (lines 3 and 4 missing where 5 came)", n)
	}
	if n := l.Lost(8); n != 5 {
		t.Fatalf("Lost(8) = %d, want 5", n)
	}
	if _, err := numberedlog.Read(filepath.Join(t.TempDir(), "absent")); !os.IsNotExist(err) {
		t.Fatalf("a missing log: %v", err)
	}
}
