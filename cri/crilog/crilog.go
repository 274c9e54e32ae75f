package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Streams of a container's output.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// TimeFormat is the timestamp layout of a record: UTC, nine fractional digits.
const TimeFormat = "2006-01-02T15:04:05.000000000Z"

// DefaultMaxLine is the default longest content of one record.
const DefaultMaxLine = 16 * 1024

// Entry is one record of a CRI log file.
type Entry struct {
	Time    time.Time
	Stream  string // Stdout or Stderr
	Partial bool   // tag P: the line continues in the next record of Stream
	Content []byte // without the record's newline
}

// AppendRecord appends e formatted as one record, newline included, to dst.
func (e Entry) AppendRecord(dst []byte) []byte {
	dst = e.Time.UTC().AppendFormat(dst, TimeFormat)
	dst = append(dst, ' ')
	dst = append(dst, e.Stream...)
	if e.Partial {
		dst = append(dst, " P "...)
	} else {
		dst = append(dst, " F "...)
	}
	dst = append(dst, e.Content...)
	return append(dst, '\n')
}

// ParseLine parses one record. The trailing newline is optional. The tag may carry
// further colon-separated fields after P or F (ignored, for forward compatibility);
// Content aliases line.
func ParseLine(line []byte) (Entry, error) {
	var e Entry
	line = bytes.TrimSuffix(line, []byte{'\n'})
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return e, fmt.Errorf("parse CRI log line: no timestamp delimiter")
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return e, fmt.Errorf("parse CRI log line: timestamp: %w", err)
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		// RFC 3339 in UTC, as the log is written, has four-digit years.
		return e, fmt.Errorf("parse CRI log line: timestamp %s is outside years 0000-9999 in UTC", ts)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return e, fmt.Errorf("parse CRI log line: no stream delimiter")
	}
	switch string(stream) {
	case Stdout, Stderr:
	default:
		return e, fmt.Errorf("parse CRI log line: unknown stream %q", stream)
	}
	tag, content, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return e, fmt.Errorf("parse CRI log line: no tag delimiter")
	}
	tag, _, _ = bytes.Cut(tag, []byte{':'})
	switch string(tag) {
	case "P":
		e.Partial = true
	case "F":
	default:
		return e, fmt.Errorf("parse CRI log line: unknown tag %q", tag)
	}
	e.Time, e.Stream, e.Content = t, string(stream), content
	return e, nil
}

// Sink is a log file shared by the Writers of a container's streams. It is safe for
// concurrent use.
type Sink struct {
	mu   sync.Mutex
	path string
	w    io.Writer
	f    *os.File // nil for a Sink over a plain io.Writer
}

// Open opens (creating it and its parent directories if needed) the log file at path
// for appending.
func Open(path string) (*Sink, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	return &Sink{path: path, w: f, f: f}, nil
}

// NewSink returns a Sink writing to w; it cannot be reopened.
func NewSink(w io.Writer) *Sink { return &Sink{w: w} }

func openFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("container log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("container log: %w", err) // names the path
	}
	return f, nil
}

// Reopen opens the Sink's path again (creating the file if it was renamed away, as
// log rotation does) and switches to it; on failure the Sink keeps its old file.
func (s *Sink) Reopen() error {
	if s.path == "" {
		return errors.New("reopen container log: sink has no path")
	}
	f, err := openFile(s.path)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	s.mu.Lock()
	old := s.f
	s.w, s.f = f, f
	s.mu.Unlock()
	return old.Close()
}

// Close closes the Sink's file.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}

// write writes one or more whole records in one write.
func (s *Sink) write(rec []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(rec); err != nil {
		if s.path != "" {
			return fmt.Errorf("write container log %s: %w", s.path, err)
		}
		return fmt.Errorf("write container log: %w", err)
	}
	return nil
}

// Writer turns one stream's output into records of its Sink. A Writer is not safe
// for concurrent use; use one per stream.
type Writer struct {
	sink    *Sink
	stream  string
	max     int
	now     func() time.Time
	pending []byte // output not yet written: no newline in it, at most max bytes
	rec     []byte // reused record buffer
}

// NewWriter returns a Writer of stream into sink. Lines longer than maxLine bytes
// are split into partial records; maxLine <= 0 means DefaultMaxLine.
func NewWriter(sink *Sink, stream string, maxLine int) *Writer {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	return &Writer{sink: sink, stream: stream, max: maxLine, now: time.Now}
}

// Write writes the complete lines of p, and partial records for pending output
// longer than the maximum, as records; the rest waits for more output or Close. It
// always consumes all of p: on a write error the records are lost and the error is
// returned.
func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	var err error
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.pending = append(w.pending, p...)
			err = errors.Join(err, w.emitPartials())
			break
		}
		w.pending = append(w.pending, p[:i]...)
		p = p[i+1:]
		err = errors.Join(err, w.emitPartials(), w.emit(w.pending, false))
		w.pending = w.pending[:0]
	}
	return n, err
}

// emitPartials writes P records while more than max bytes are pending: with exactly
// max pending the next byte may still end the line, which then is one F record.
func (w *Writer) emitPartials() error {
	var err error
	off := 0
	for len(w.pending)-off > w.max {
		err = errors.Join(err, w.emit(w.pending[off:off+w.max], true))
		off += w.max
	}
	if off > 0 {
		w.pending = append(w.pending[:0], w.pending[off:]...)
	}
	return err
}

func (w *Writer) emit(content []byte, partial bool) error {
	w.rec = Entry{Time: w.now(), Stream: w.stream, Partial: partial, Content: content}.AppendRecord(w.rec[:0])
	return w.sink.write(w.rec)
}

// Close writes output left without a final newline as an F record. It does not close
// the Sink.
func (w *Writer) Close() error {
	if len(w.pending) == 0 {
		return nil
	}
	err := w.emit(w.pending, false)
	w.pending = w.pending[:0]
	return err
}
