package server

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodekit-dev/nodekit/cri/crilog"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// rec formats one CRI record written sec seconds after t0.
func rec(sec int, stream string, partial bool, content string) string {
	e := crilog.Entry{Time: t0.Add(time.Duration(sec) * time.Second), Stream: stream, Partial: partial, Content: []byte(content)}
	return string(e.AppendRecord(nil))
}

func writeFile(t *testing.T, path string, content ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(content, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path string, content ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(content, "")); err != nil {
		t.Fatal(err)
	}
}

// logServer serves pod default/web (containers app, side) over a local socket;
// app's current log is the file the test writes, its previous one holds "old".
func logServer(t *testing.T) (c *http.Client, current, previous string) {
	dir := t.TempDir()
	current = filepath.Join(dir, "default_web_uid", "app", "1.log")
	previous = filepath.Join(dir, "default_web_uid", "app", "0.log")
	writeFile(t, previous, rec(0, "stdout", false, "old"))
	p := &fakeProvider{
		pods: []*v1.Pod{testPod("default", "web", "app", "side")},
		logs: map[string]string{
			"default/web/app":          current,
			"default/web/app/previous": previous,
			"default/web/side":         filepath.Join(dir, "default_web_uid", "side", "0.log"), // never written
		},
	}
	o := baseOptions(t, p)
	o.Port, o.HealthzPort = -1, -1
	o.LocalSocket = filepath.Join(dir, "kubelet.sock")
	o.Clock = clocktesting.NewFakeClock(t0.Add(10 * time.Second))
	start(t, o)
	return unixClient(t, o.LocalSocket), current, previous
}

func TestContainerLogs(t *testing.T) {
	c, current, _ := logServer(t)
	// stdout and stderr interleaved, lines split into partial records
	writeFile(t, current,
		rec(1, "stdout", false, "one"),
		rec(2, "stdout", true, "tw"),
		rec(3, "stderr", false, "err1"),
		rec(4, "stdout", false, "o"),
		"not a CRI record\n",
		rec(5, "stderr", true, "err"),
		rec(6, "stdout", false, "three"),
		rec(7, "stderr", false, "2"),
	)
	const logs = "/containerLogs/default/web/app"
	for _, tc := range []struct {
		query    string
		wantCode int
		want     string
	}{
		{"", 200, "one\nerr1\ntwo\nthree\nerr2\n"},
		{"?tailLines=0", 200, ""},
		{"?tailLines=1", 200, "err2\n"},
		{"?tailLines=2", 200, "three\nerr2\n"},
		{"?tailLines=3", 200, "two\nthree\nerr2\n"},
		{"?tailLines=100", 200, "one\nerr1\ntwo\nthree\nerr2\n"},
		{"?tail=1", 200, "err2\n"},
		{"?tail=all", 200, "one\nerr1\ntwo\nthree\nerr2\n"},
		{"?tailLines=2&timestamps=true", 200, "2024-01-01T00:00:06.000000000Z three\n2024-01-01T00:00:05.000000000Z err2\n"},
		{"?limitBytes=6", 200, "one\ner"},
		{"?limitBytes=4", 200, "one\n"},
		{"?timestamps=1&limitBytes=12", 200, "2024-01-01T0"},
		{"?sinceSeconds=6", 200, "three\nerr2\n"}, // now is t0+10s: lines from t0+4s; a line's time is its first record's
		{"?sinceTime=2024-01-01T00:00:03Z", 200, "err1\nthree\nerr2\n"},
		{"?previous=true", 200, "old\n"},
		{"?tailLines=-1", 400, "tailLines"},
		{"?limitBytes=0", 400, "limitBytes"},
		{"?follow=maybe", 400, "follow"},
		{"?sinceSeconds=5&sinceTime=2024-01-01T00:00:03Z", 422, "mutually exclusive"},
	} {
		code, body := get(t, c, "http://localhost"+logs+tc.query)
		if code != tc.wantCode {
			t.Errorf("GET %s%s: status %d (%q), want %d", logs, tc.query, code, body, tc.wantCode)
			continue
		}
		if code == 200 && body != tc.want || code != 200 && !strings.Contains(body, tc.want) {
			t.Errorf("GET %s%s = %q, want %q", logs, tc.query, body, tc.want)
		}
	}

	for _, tc := range []struct{ path, want string }{
		{"/containerLogs/default/nope/app", `pod "nope" not found in namespace "default"`},
		{"/containerLogs/other/web/app", `pod "web" not found in namespace "other"`},
		{"/containerLogs/default/web/nope", `container "nope" not found in pod default/web`},
		{"/containerLogs/default/web/side", `logs of container "side" in pod default/web`},
	} {
		code, body := get(t, c, "http://localhost"+tc.path)
		if code != http.StatusNotFound || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %q, want 404 with %q", tc.path, code, body, tc.want)
		}
	}
}

func TestContainerLogsUnfinishedLine(t *testing.T) {
	c, current, _ := logServer(t)
	writeFile(t, current,
		rec(1, "stdout", false, "done"),
		rec(2, "stderr", true, "no newline yet"),
		rec(3, "stdout", true, "half"),
		"2024-01-01T00:00:04.000000000Z stdout F cut mid-wri", // the writer stopped mid-record
	)
	for query, want := range map[string]string{
		"":             "done\nhalfcut mid-wri\nno newline yet", // unfinished lines come last
		"?tailLines=1": "no newline yet",
		"?tailLines=2": "halfcut mid-wri\nno newline yet",
	} {
		if _, body := get(t, c, "http://localhost/containerLogs/default/web/app"+query); body != want {
			t.Errorf("GET %q = %q, want %q", query, body, want)
		}
	}
}

// TestTailStartMatchesFullRead checks on random logs, with lines longer than
// the backward scan's window and streams interleaving partial records, that
// every tail equals the end of the full output.
func TestTailStartMatchesFullRead(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 200; iter++ {
		var b strings.Builder
		open := map[string]bool{}
		for i := 0; i < 1+rng.IntN(60); i++ {
			stream := [2]string{"stdout", "stderr"}[rng.IntN(2)]
			size := rng.IntN(20)
			if rng.IntN(10) == 0 {
				size = 20000 + rng.IntN(30000)
			}
			content := strings.Repeat(string(rune('a'+i%26)), size)
			partial := rng.IntN(3) == 0
			open[stream] = partial
			b.WriteString(rec(i, stream, partial, content))
		}
		for _, stream := range []string{"stdout", "stderr"} { // lines end, as a monitor ends them when it exits
			if open[stream] {
				b.WriteString(rec(99, stream, false, "end"))
			}
		}
		path := filepath.Join(t.TempDir(), "0.log")
		writeFile(t, path, b.String())

		read := func(tail int64) []string {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := streamLog(context.Background(), f, path, logOptions{tail: tail, limitBytes: -1}, nil, &out, func() {}); err != nil {
				t.Fatal(err)
			}
			return strings.SplitAfter(out.String(), "\n")
		}
		full := read(-1)
		if full[len(full)-1] == "" {
			full = full[:len(full)-1]
		}
		for n := 0; n <= len(full)+1; n++ {
			got := read(int64(n))
			if got[len(got)-1] == "" {
				got = got[:len(got)-1]
			}
			want := full[max(0, len(full)-n):]
			if strings.Join(got, "") != strings.Join(want, "") {
				t.Fatalf("iteration %d, tail %d: got %d lines, want %d (of %d)\n%.300q\n%.300q", iter, n, len(got), len(want), len(full), got, want)
			}
		}
	}
}

func TestContainerLogsFollow(t *testing.T) {
	c, current, _ := logServer(t)
	writeFile(t, current, rec(1, "stdout", false, "first"), rec(2, "stdout", false, "second"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost/containerLogs/default/web/app?follow=true&tailLines=1", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended, want %q", want)
			}
			if got != want {
				t.Fatalf("followed line %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no line within 10s, want %q", want)
		}
	}
	expect("second")

	// the file grows, a line arriving in two partial records
	appendFile(t, current, rec(3, "stderr", true, "gr"))
	appendFile(t, current, rec(4, "stderr", false, "own"))
	expect("grown")

	// rotation: renamed away, written a last time, then a new file at the path
	if err := os.Rename(current, current+".20240101-000000"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, current+".20240101-000000", rec(5, "stdout", false, "last in old file"))
	writeFile(t, current, rec(6, "stdout", false, "after rotation"))
	expect("last in old file")
	expect("after rotation")

	// truncation in place starts over at the beginning (seen as a file shorter
	// than the read position, so the new record is shorter than the old one)
	writeFile(t, current, rec(7, "stdout", false, "trunc"))
	expect("trunc")

	cancel()
	for range lines {
	}
	waitNoGoroutine(t, "server.streamLog", "dirwatch.(*Watcher).run", "fsnotify.(*inotify).readEvents")
}

// waitNoGoroutine waits until no goroutine runs any of funcs.
func waitNoGoroutine(t *testing.T, funcs ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var found []string
		for _, f := range funcs {
			if strings.Contains(stacks, f) {
				found = append(found, f)
			}
		}
		if len(found) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines still running %v:\n%s", found, stacks)
		}
		time.Sleep(20 * time.Millisecond) // polling for goroutines to exit, not waiting out a delay
	}
}

// TestContainerLogsFollowEndsWhenStopped: a followed log ends, as the
// kubelet's, once its container stopped, after what it wrote last.
func TestContainerLogsFollowEndsWhenStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	writeFile(t, path, rec(1, "stdout", false, "running"))
	p := &fakeProvider{pods: []*v1.Pod{testPod("default", "web", "app")}, logs: map[string]string{"default/web/app": path}}
	o := baseOptions(t, p)
	o.Port, o.HealthzPort = -1, -1
	o.LocalSocket = filepath.Join(dir, "kubelet.sock")
	start(t, o)
	resp, err := unixClient(t, o.LocalSocket).Get("http://localhost/containerLogs/default/web/app?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || sc.Text() != "running" {
		t.Fatalf("first line %q (%v)", sc.Text(), sc.Err())
	}
	// The container's last words, then it is gone.
	appendFile(t, path, rec(2, "stdout", false, "goodbye"))
	p.stop(path)
	var rest []string
	for sc.Scan() {
		rest = append(rest, sc.Text())
	}
	if err := sc.Err(); err != nil || !slices.Equal(rest, []string{"goodbye"}) {
		t.Fatalf("after the stop: %q (%v), want the last line and the end of the stream", rest, err)
	}
}

func TestFollowEndsWithServer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	writeFile(t, path, rec(1, "stdout", false, "x"))
	p := &fakeProvider{pods: []*v1.Pod{testPod("default", "web", "app")}, logs: map[string]string{"default/web/app": path}}
	o := baseOptions(t, p)
	o.Port, o.HealthzPort = -1, -1
	o.LocalSocket = filepath.Join(dir, "k.sock")
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer cancel()

	resp, err := unixClient(t, o.LocalSocket).Get("http://localhost/containerLogs/default/web/app?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "x\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel() // the server stops: the stream ends instead of holding Run
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return while a log was followed")
	}
	waitNoGoroutine(t, "server.streamLog")
}
