package crilog

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParseLine: a record ParseLine accepts has a known stream and, written
// back with AppendRecord, parses to the same entry. Seeds: f.Add below and
// testdata/fuzz/FuzzParseLine (lines of real container logs).
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"2024-03-05T06:08:09.000001200Z stdout F hello\n",
		"2024-03-05T06:08:09.000001200Z stderr P a b",
		"2016-10-06T00:17:09.669794202Z stdout F \n",
		"2016-10-06T00:17:09.669794203+02:00 stderr F:x:y content with: colons\r\n",
		"2016-10-06T00:17:09Z stdout P\n",
		"not a record",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseLine(line)
		if err != nil {
			return
		}
		if e.Stream != Stdout && e.Stream != Stderr {
			t.Fatalf("ParseLine(%q): stream %q", line, e.Stream)
		}
		if len(e.Content) > len(line) || !bytes.Contains(line, e.Content) {
			t.Fatalf("ParseLine(%q): content %q is not part of the line", line, e.Content)
		}
		rec := e.AppendRecord(nil)
		if !bytes.HasSuffix(rec, []byte{'\n'}) {
			t.Fatalf("AppendRecord(%+v) = %q: no newline", e, rec)
		}
		again, err := ParseLine(rec)
		if err != nil {
			t.Fatalf("ParseLine(%q) accepted, but its record %q does not parse: %v", line, rec, err)
		}
		if !again.Time.Equal(e.Time) || again.Stream != e.Stream || again.Partial != e.Partial || !bytes.Equal(again.Content, e.Content) {
			t.Fatalf("round trip of %q through %q: %+v, want %+v", line, rec, again, e)
		}
		if rec2 := again.AppendRecord(nil); !bytes.Equal(rec2, rec) {
			t.Fatalf("AppendRecord is not stable: %q then %q", rec, rec2)
		}
	})
}

// FuzzWriterReassembles: output written through a Writer in arbitrary chunks comes back
// from its records unchanged: every record parses, no content exceeds the
// maximum, P records are followed by the rest of their line, and joining the
// records' contents (with a newline after each F record) gives the output.
func FuzzWriterReassembles(f *testing.F) {
	f.Add([]byte("hello\nworld\n"), uint16(0), uint8(3))
	f.Add([]byte("a line longer than eight bytes\nshort\nno newline at the end"), uint16(8), uint8(5))
	f.Add([]byte("\n\n\r\n12345678\n123456789"), uint16(8), uint8(1))
	f.Add([]byte("exactly8"), uint16(8), uint8(0))
	f.Fuzz(func(t *testing.T, out []byte, maxLine uint16, chunk uint8) {
		if len(out) > 1<<16 {
			return
		}
		limit := int(maxLine % 64) // 0: the default, else short records to split often
		var buf bytes.Buffer
		w := NewWriter(NewSink(&buf), Stderr, limit)
		at := time.Date(2024, 3, 5, 7, 8, 9, 1200, time.UTC)
		w.now = func() time.Time { return at }
		step := int(chunk) + 1
		for p := out; len(p) > 0; {
			n := min(step, len(p))
			if m, err := w.Write(p[:n]); err != nil || m != n {
				t.Fatalf("Write(%q) = %d, %v", p[:n], m, err)
			}
			p = p[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if limit <= 0 {
			limit = DefaultMaxLine
		}
		var got []byte
		lines := bytes.SplitAfter(buf.Bytes(), []byte{'\n'})
		if len(lines[len(lines)-1]) != 0 {
			t.Fatalf("log does not end with a newline: %q", buf.Bytes())
		}
		lines = lines[:len(lines)-1]
		for i, l := range lines {
			e, err := ParseLine(l)
			if err != nil {
				t.Fatalf("record %d %q: %v", i, l, err)
			}
			if e.Stream != Stderr || !e.Time.Equal(at) {
				t.Fatalf("record %d %q: stream %q time %v", i, l, e.Stream, e.Time)
			}
			if len(e.Content) > limit {
				t.Fatalf("record %d: %d bytes of content, max %d", i, len(e.Content), limit)
			}
			if e.Partial && len(e.Content) != limit {
				t.Fatalf("record %d: partial record of %d bytes, want exactly %d", i, len(e.Content), limit)
			}
			if e.Partial && i == len(lines)-1 {
				t.Fatalf("the last record is partial: %q", l)
			}
			got = append(got, e.Content...)
			if !e.Partial {
				got = append(got, '\n')
			}
		}
		want := out
		if len(out) > 0 && out[len(out)-1] != '\n' {
			want = append(bytes.Clone(out), '\n') // Close ends the last line
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("records give %q, want %q", got, want)
		}
	})
}
