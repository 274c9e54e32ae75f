package server

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodekit-dev/nodekit/cri/crilog"
	"github.com/nodekit-dev/nodekit/internal/podcontainer"
)

// logCheckPeriod is how often a followed log is looked at even without a
// change notification (the kubelet's logForceCheckPeriod).
const logCheckPeriod = time.Second

// maxJoinedLine bounds a line joined from partial records; beyond it the
// pending part is written out without a newline and joining goes on.
const maxJoinedLine = 1 << 20

// logOptions are the query parameters of /containerLogs, as v1.PodLogOptions.
type logOptions struct {
	tail       int64 // lines from the end; < 0 means all
	limitBytes int64 // < 0 means no limit
	since      time.Time
	follow     bool
	timestamps bool
	previous   bool
}

// parseLogOptions reads the query as the kubelet does (tail is the old name of
// tailLines; "all" means no limit). It returns the HTTP status for an error.
func parseLogOptions(q url.Values, now time.Time) (logOptions, int, error) {
	o := logOptions{tail: -1, limitBytes: -1}
	boolParam := func(name string, dst *bool) error {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("query parameter %s=%q: not a boolean", name, v)
			}
			*dst = b
		}
		return nil
	}
	intParam := func(name string, min int64) (int64, bool, error) {
		v := q.Get(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("query parameter %s=%q: not an integer", name, v)
		}
		if n < min {
			return 0, false, fmt.Errorf("query parameter %s=%d: must be at least %d", name, n, min)
		}
		return n, true, nil
	}
	for _, p := range []struct {
		name string
		dst  *bool
	}{{"follow", &o.follow}, {"timestamps", &o.timestamps}, {"previous", &o.previous}} {
		if err := boolParam(p.name, p.dst); err != nil {
			return o, http.StatusBadRequest, err
		}
	}
	tailName := "tailLines"
	if t := q.Get("tail"); t != "" && q.Get("tailLines") == "" {
		tailName = "tail"
	}
	if q.Get(tailName) != "all" {
		n, ok, err := intParam(tailName, 0)
		if err != nil {
			return o, http.StatusBadRequest, err
		}
		if ok {
			o.tail = n
		}
	}
	n, ok, err := intParam("limitBytes", 1)
	if err != nil {
		return o, http.StatusBadRequest, err
	}
	if ok {
		o.limitBytes = n
	}
	secs, haveSecs, err := intParam("sinceSeconds", 1)
	if err != nil {
		return o, http.StatusBadRequest, err
	}
	if haveSecs {
		o.since = now.Add(-time.Duration(secs) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		if haveSecs {
			return o, http.StatusUnprocessableEntity, errors.New("sinceSeconds and sinceTime are mutually exclusive")
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return o, http.StatusBadRequest, fmt.Errorf("query parameter sinceTime=%q: not an RFC 3339 time", v)
		}
		o.since = t
	}
	return o, 0, nil
}

func (s *Server) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	ns, name, ctr := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, code, err := parseLogOptions(r.URL.Query(), s.clock.Now())
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	pod := findPod(s.o.Provider.GetPods(), ns, name)
	if pod == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("pod %q not found in namespace %q", name, ns))
		return
	}
	if !podcontainer.Has(pod, ctr) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %q not found in pod %s/%s", ctr, ns, name))
		return
	}
	path, err := s.o.Provider.GetContainerLogPath(ns, name, ctr, opts.previous)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			code = http.StatusNotFound
		}
		writeError(w, code, fmt.Sprintf("logs of container %q in pod %s/%s: %v", ctr, ns, name, err))
		return
	}
	f, err := os.Open(path)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, fs.ErrNotExist) {
			code = http.StatusNotFound
		}
		writeError(w, code, fmt.Sprintf("logs of container %q in pod %s/%s: %v", ctr, ns, name, err))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rc := http.NewResponseController(w)
	flush := func() { _ = rc.Flush() }
	var running func() bool
	if p, ok := s.o.Provider.(LogFollowProvider); ok && opts.follow {
		running = func() bool { return p.ContainerRunning(r.Context(), ns, name, ctr, path) }
	}
	if err := streamLog(r.Context(), f, path, opts, running, w, flush); err != nil && r.Context().Err() == nil {
		s.log.Warn("container logs", "pod", ns+"/"+name, "container", ctr, "path", path, "err", err)
	}
}

func findPod(pods []*v1.Pod, ns, name string) *v1.Pod {
	for _, p := range pods {
		if p != nil && p.Namespace == ns && p.Name == name {
			return p
		}
	}
	return nil
}

// errLimit ends a stream once limitBytes are written.
var errLimit = errors.New("limitBytes reached")

// lineWriter writes lines with an optional timestamp, up to a byte limit.
type lineWriter struct {
	w          io.Writer
	timestamps bool
	remain     int64 // < 0: no limit
	buf        []byte
}

func (lw *lineWriter) write(t time.Time, content []byte, newline bool) error {
	b := lw.buf[:0]
	if lw.timestamps {
		b = t.UTC().AppendFormat(b, crilog.TimeFormat)
		b = append(b, ' ')
	}
	b = append(b, content...)
	if newline {
		b = append(b, '\n')
	}
	lw.buf = b
	if lw.remain >= 0 && int64(len(b)) >= lw.remain {
		_, err := lw.w.Write(b[:lw.remain])
		lw.remain = 0
		if err != nil {
			return err
		}
		return errLimit
	}
	if lw.remain >= 0 {
		lw.remain -= int64(len(b))
	}
	_, err := lw.w.Write(b)
	return err
}

// logLine is a line being joined from partial records, or one kept for the tail.
type logLine struct {
	t       time.Time
	off     int64 // offset of its first record
	buf     []byte
	newline bool
}

// logStream turns CRI records into output lines: partial records of a stream
// are joined; a line is written when its last record is read (lines of stdout
// and stderr in that order), stamped with its first record's time.
type logStream struct {
	opts    logOptions
	out     *lineWriter
	pending map[string]*logLine
	tail    []logLine // while collecting the last opts.tail lines; nil otherwise
	tailing bool
}

func (ls *logStream) record(rec []byte, off int64) error {
	e, err := crilog.ParseLine(rec)
	if err != nil {
		return nil // not a CRI record: skipped, as the kubelet does
	}
	p := ls.pending[e.Stream]
	if e.Partial {
		if p == nil {
			p = &logLine{t: e.Time, off: off}
			ls.pending[e.Stream] = p
		}
		p.buf = append(p.buf, e.Content...)
		if len(p.buf) >= maxJoinedLine {
			err := ls.emit(p.t, p.buf, false)
			p.buf = p.buf[:0]
			return err
		}
		return nil
	}
	if p == nil {
		return ls.emit(e.Time, e.Content, true)
	}
	delete(ls.pending, e.Stream)
	return ls.emit(p.t, append(p.buf, e.Content...), true)
}

func (ls *logStream) emit(t time.Time, line []byte, newline bool) error {
	if !ls.opts.since.IsZero() && t.Before(ls.opts.since) {
		return nil
	}
	if ls.tailing {
		if ls.opts.tail == 0 {
			return nil
		}
		if int64(len(ls.tail)) == ls.opts.tail {
			ls.tail = ls.tail[1:]
		}
		ls.tail = append(ls.tail, logLine{t: t, buf: bytes.Clone(line), newline: newline})
		return nil
	}
	return ls.out.write(t, line, newline)
}

// endTail writes the collected tail and switches to writing lines as they come.
func (ls *logStream) endTail() error {
	if !ls.tailing {
		return nil
	}
	ls.tailing = false
	for _, l := range ls.tail {
		if err := ls.out.write(l.t, l.buf, l.newline); err != nil {
			return err
		}
	}
	ls.tail = nil
	return nil
}

// flushPending writes unfinished lines, oldest first, without a newline: the
// end of a log that is not followed.
func (ls *logStream) flushPending() error {
	lines := make([]*logLine, 0, len(ls.pending))
	for _, p := range ls.pending {
		lines = append(lines, p)
	}
	slices.SortFunc(lines, func(a, b *logLine) int { return cmp.Compare(a.off, b.off) })
	clear(ls.pending)
	for _, p := range lines {
		if len(p.buf) > 0 {
			if err := ls.emit(p.t, p.buf, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// LogFollowProvider is a Provider that tells whether the container instance
// writing a log file still runs. A followed log then ends, as the kubelet's,
// once its container stopped and what it wrote is read; without it a follow
// ends only when the client goes away.
type LogFollowProvider interface {
	ContainerRunning(ctx context.Context, namespace, pod, container, logPath string) bool
}

// streamLog writes the log file f (opened from path) to w as opts ask. When
// following, it waits for the file to grow, follows it across a rotation (path
// renamed away and recreated) or truncation, and returns when ctx ends or,
// with running, once the container stopped (checked at most every
// logCheckPeriod) and the file is read to its end.
func streamLog(ctx context.Context, f *os.File, path string, opts logOptions, running func() bool, w io.Writer, flush func()) (err error) {
	defer func() { f.Close() }()
	ls := &logStream{
		opts:    opts,
		out:     &lineWriter{w: w, timestamps: opts.timestamps, remain: opts.limitBytes},
		pending: map[string]*logLine{},
		tailing: opts.tail >= 0,
	}
	defer func() {
		if errors.Is(err, errLimit) {
			err = nil
		}
	}()
	var pos int64
	if opts.tail >= 0 {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if pos, err = tailStart(f, fi.Size(), opts.tail); err != nil {
			return fmt.Errorf("find the last %d lines of %s: %w", opts.tail, path, err)
		}
	}
	if _, err := f.Seek(pos, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var waiter changeWaiter
	defer func() {
		if waiter != nil {
			waiter.close()
		}
	}()
	rotated := false // the path names a new file; the old one is read to its end once more
	stopped := false // the container stopped: end at the end of the file
	var lastCheck time.Time
	for {
		rec, rerr := br.ReadBytes('\n')
		if rerr == nil {
			if err := ls.record(rec, pos); err != nil {
				return err
			}
			pos += int64(len(rec))
			continue
		}
		if rerr != io.EOF {
			return fmt.Errorf("read %s: %w", path, rerr)
		}
		if !opts.follow || stopped {
			if len(rec) > 0 { // a record without its newline: the writer stopped mid-line
				if err := ls.record(rec, pos); err != nil {
					return err
				}
			}
			if err := ls.flushPending(); err != nil {
				return err
			}
			return ls.endTail()
		}
		if err := ls.endTail(); err != nil {
			return err
		}
		flush()

		// At the end of what is written: has the file been replaced or cut?
		cur, serr := os.Stat(path)
		fi, ferr := f.Stat()
		switch {
		case serr == nil && ferr == nil && !os.SameFile(cur, fi):
			if !rotated { // read the old file once more: the writer may have added to it meanwhile
				rotated = true
				if _, err := f.Seek(pos, io.SeekStart); err != nil {
					return err
				}
				br.Reset(f)
				continue
			}
			nf, err := os.Open(path)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					break // renamed again; wait for the next one
				}
				return err
			}
			f.Close()
			f, pos, rotated = nf, 0, false
			br.Reset(f)
			continue
		case ferr == nil && fi.Size() < pos: // truncated in place: start over
			pos = 0
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			br.Reset(f)
			continue
		}

		if waiter == nil {
			waiter = newChangeWaiter(path)
			// a change between the read and the watch would be missed: look again first
		} else if err := waiter.wait(ctx, logCheckPeriod); err != nil {
			return nil // the client went away or the server stops
		}
		if ctx.Err() != nil {
			return nil
		}
		if running != nil && time.Since(lastCheck) >= logCheckPeriod {
			lastCheck = time.Now()
			// Stopped: what it wrote before is in the file; read it once more.
			stopped = !running()
		}
		if _, err := f.Seek(pos, io.SeekStart); err != nil {
			return err
		}
		br.Reset(f)
	}
}

// changeWaiter wakes a follower when its log directory changes.
type changeWaiter interface {
	// wait returns when something changed, after at most period, or with
	// ctx's error when ctx ends.
	wait(ctx context.Context, period time.Duration) error
	close()
}

// pollWaiter only waits for the period.
type pollWaiter struct{}

func (pollWaiter) wait(ctx context.Context, period time.Duration) error {
	t := time.NewTimer(period)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (pollWaiter) close() {}

// tailStart returns the offset to read from so that the last n lines of the
// file (size bytes) are read whole, their partial records included. Reading
// from there may also yield fragments of older lines, which come first and
// fall out of the tail. Unfinished lines (partial records at the end of a
// stream, written out last) are included when their stream shows up while
// looking back for the n finished lines; one whose stream wrote nothing since
// is left out rather than reading the whole file to rule it out.
func tailStart(r io.ReaderAt, size, n int64) (int64, error) {
	start := int64(-1)
	if n == 0 {
		err := scanBackward(r, size, func(off int64, rec []byte) bool {
			start = off + int64(len(rec))
			return true
		})
		return max(start, 0), err
	}
	var count int64
	open := map[string]bool{} // streams whose earlier partial records belong to a selected line
	seen := map[string]bool{}
	err := scanBackward(r, size, func(off int64, rec []byte) bool {
		e, err := crilog.ParseLine(rec)
		if err != nil {
			return false
		}
		st := e.Stream
		switch {
		case !e.Partial:
			seen[st] = true
			if count < n {
				count++
				open[st] = true
				start = off
			} else {
				open[st] = false
			}
		case !seen[st]:
			// an unfinished line: output last, so it is always read, and
			// counting only finished lines makes the start early enough
			seen[st] = true
			open[st] = true
			start = off
		case open[st]:
			start = off
		}
		return count == n && !open[crilog.Stdout] && !open[crilog.Stderr]
	})
	return max(start, 0), err
}

// scanBackward calls fn with each record of the first size bytes of r, last
// first, until fn returns true. The bytes after the last newline (a record
// being written) count as a record too.
func scanBackward(r io.ReaderAt, size int64, fn func(off int64, rec []byte) bool) error {
	const chunk = 32 << 10
	var carry []byte // the start of the window: a record that began before it
	pos := size
	for pos > 0 {
		n := min(int64(chunk), pos)
		pos -= n
		buf := make([]byte, n, n+int64(len(carry)))
		if _, err := r.ReadAt(buf, pos); err != nil && err != io.EOF {
			return err
		}
		data := append(buf, carry...) // spans [pos, pos+len(data))
		for len(data) > 0 {
			i := bytes.LastIndexByte(data[:len(data)-1], '\n')
			if i < 0 {
				if pos == 0 && fn(0, data) {
					return nil
				}
				break
			}
			if fn(pos+int64(i)+1, data[i+1:]) {
				return nil
			}
			data = data[:i+1]
		}
		carry = data
	}
	return nil
}
