package crilog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var fixed = time.Date(2024, 3, 5, 7, 8, 9, 1200, time.FixedZone("x", 3600))

func TestAppendRecordExactFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Entry
		want string
	}{
		{Entry{Time: fixed, Stream: Stdout, Content: []byte("hello")}, "2024-03-05T06:08:09.000001200Z stdout F hello\n"},
		{Entry{Time: fixed, Stream: Stderr, Partial: true, Content: []byte("a b")}, "2024-03-05T06:08:09.000001200Z stderr P a b\n"},
		{Entry{Time: fixed.Truncate(time.Second), Stream: Stdout}, "2024-03-05T06:08:09.000000000Z stdout F \n"},
	} {
		if got := string(tc.e.AppendRecord(nil)); got != tc.want {
			t.Errorf("AppendRecord = %q, want %q", got, tc.want)
		}
	}
}

// records writes the chunks through a Writer with max bytes per record and returns
// the records without their timestamps.
func records(t *testing.T, max int, chunks ...string) []string {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(NewSink(&buf), Stdout, max)
	w.now = func() time.Time { return fixed }
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		ts, rest, _ := strings.Cut(line, " ")
		if ts != "2024-03-05T06:08:09.000001200Z" {
			t.Fatalf("timestamp %q", ts)
		}
		out = append(out, rest)
	}
	return out
}

func TestWriterSplitsRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		chunks []string
		want   []string
	}{
		{"lines", 16, []string{"a\nbb\n"}, []string{"stdout F a\n", "stdout F bb\n"}},
		{"empty lines", 16, []string{"\n\nx\n"}, []string{"stdout F \n", "stdout F \n", "stdout F x\n"}},
		{"line across writes", 16, []string{"ab", "c", "d\ne"}, []string{"stdout F abcd\n", "stdout F e\n"}},
		{"no newline tail", 16, []string{"x\ntail"}, []string{"stdout F x\n", "stdout F tail\n"}},
		{"crlf kept", 16, []string{"a\r\n"}, []string{"stdout F a\r\n"}},
		{"split P P F", 4, []string{"abcdefghi\n"}, []string{"stdout P abcd\n", "stdout P efgh\n", "stdout F i\n"}},
		{"exact max is one F", 4, []string{"abcd\n"}, []string{"stdout F abcd\n"}},
		{"multiple of max", 4, []string{"abcdefgh\n"}, []string{"stdout P abcd\n", "stdout F efgh\n"}},
		{"split across writes", 4, []string{"abc", "def", "ghij", "\n"}, []string{"stdout P abcd\n", "stdout P efgh\n", "stdout F ij\n"}},
		{"long tail without newline", 4, []string{"abcdef"}, []string{"stdout P abcd\n", "stdout F ef\n"}},
		{"nothing", 4, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := records(t, tc.max, tc.chunks...)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("records = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		line    string
		want    Entry
		wantErr bool
	}{
		{line: "2024-03-05T06:08:09.000001200Z stdout F hello world\n", want: Entry{Time: fixed, Stream: Stdout, Content: []byte("hello world")}},
		{line: "2024-03-05T06:08:09.000001200Z stderr P  x", want: Entry{Time: fixed, Stream: Stderr, Partial: true, Content: []byte(" x")}},
		{line: "2024-03-05T06:08:09.000001200Z stdout F \n", want: Entry{Time: fixed, Stream: Stdout, Content: []byte{}}},
		{line: "2024-03-05T06:08:09.0000012Z stdout F:x a", want: Entry{Time: fixed, Stream: Stdout, Content: []byte("a")}},
		{line: "2024-03-05T06:08:09Z stdout F a\r\n", want: Entry{Time: fixed.Truncate(time.Second), Stream: Stdout, Content: []byte("a\r")}},
		{line: "", wantErr: true},
		{line: "notatime stdout F a", wantErr: true},
		{line: "2024-03-05T06:08:09Z stdin F a", wantErr: true},
		{line: "2024-03-05T06:08:09Z stdout X a", wantErr: true},
		{line: "2024-03-05T06:08:09Z stdout F", wantErr: true},
		{line: "2024-03-05T06:08:09Z stdout", wantErr: true},
		// Years outside 0000-9999 in UTC do not write back in RFC 3339.
		{line: "0000-01-01T00:00:00+01:00 stdout F x", wantErr: true},
		{line: "9999-12-31T23:59:59-01:00 stdout F x", wantErr: true},
		{line: "0000-01-01T00:00:00Z stdout F x", want: Entry{Time: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), Stream: Stdout, Content: []byte("x")}},
	} {
		got, err := ParseLine([]byte(tc.line))
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseLine(%q) error = %v, want error %v", tc.line, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if !got.Time.Equal(tc.want.Time) || got.Stream != tc.want.Stream || got.Partial != tc.want.Partial || !bytes.Equal(got.Content, tc.want.Content) {
			t.Errorf("ParseLine(%q) = %+v, want %+v", tc.line, got, tc.want)
		}
	}
}

func TestTwoWritersNeverInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "c.log")
	sink, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var wg sync.WaitGroup
	for _, stream := range []string{Stdout, Stderr} {
		wg.Go(func() {
			w := NewWriter(sink, stream, 64)
			line := []byte(strings.Repeat(stream[3:4], 150) + "\n") // P, P, F
			for i := 0; i < n; i++ {
				// Odd chunk sizes: records are formed across writes.
				if _, err := w.Write(line[:7]); err != nil {
					t.Error(err)
					return
				}
				if _, err := w.Write(line[7:]); err != nil {
					t.Error(err)
					return
				}
			}
			w.Close()
		})
	}
	wg.Wait()
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("log file mode %v, want 0640", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string][]byte{}
	count := map[string]int{}
	for _, rec := range bytes.SplitAfter(data, []byte("\n")) {
		if len(rec) == 0 {
			continue
		}
		e, err := ParseLine(rec)
		if err != nil {
			t.Fatalf("record %q: %v", rec, err)
		}
		lines[e.Stream] = append(lines[e.Stream], e.Content...)
		if !e.Partial {
			want := strings.Repeat(e.Stream[3:4], 150)
			if string(lines[e.Stream]) != want {
				t.Fatalf("%s line reassembled as %q", e.Stream, lines[e.Stream])
			}
			lines[e.Stream] = nil
			count[e.Stream]++
		}
	}
	if count[Stdout] != n || count[Stderr] != n {
		t.Fatalf("lines per stream = %v, want %d each", count, n)
	}
}

func TestReopenFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	sink, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	w := NewWriter(sink, Stdout, 0)
	if _, err := w.Write([]byte("before\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := sink.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{path + ".1": "before", path: "after"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		e, err := ParseLine(data)
		if err != nil || string(e.Content) != want || bytes.Count(data, []byte("\n")) != 1 {
			t.Errorf("%s holds %q (%v), want one record %q", file, data, err, want)
		}
	}
	if err := NewSink(&bytes.Buffer{}).Reopen(); err == nil {
		t.Error("Reopen of a sink without a path succeeded")
	}
}

func TestWriterSteadyStateDoesNotAllocate(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(NewSink(f), Stdout, 16)
	chunk := []byte("a line\nanother, longer than sixteen bytes\npartial")
	if _, err := w.Write(chunk); err != nil { // grow the buffers once
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = w.Write(chunk) }); allocs != 0 {
		t.Errorf("Write allocates %.1f times per call", allocs)
	}
}
