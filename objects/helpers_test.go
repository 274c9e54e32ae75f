package objects

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// timeout bounds every wait for something asynchronous; it is generous so
// that a loaded machine does not fail tests.
const timeout = 10 * time.Second

var quiet = slog.New(slog.DiscardHandler)

// writeFile writes a file whole, the way tools should: a temporary file
// renamed in place.
func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, ".tmp-"+name)
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func newDir(t testing.TB, path string, period time.Duration) *Dir {
	t.Helper()
	d, err := NewDir(DirOptions{Path: path, Period: period, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// mustRescan rescans d, failing the test if its directory cannot be read.
func mustRescan(t testing.TB, d *Dir) {
	t.Helper()
	if err := d.rescan(); err != nil {
		t.Fatal(err)
	}
}

// run runs d until the test ends.
func run(t testing.TB, d *Dir) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// subscribe returns a channel that gets n's notifications until the test
// ends.
func subscribe(t testing.TB, n Notifier) <-chan Ref {
	ch := make(chan Ref, 10000)
	cancel := n.Subscribe(func(r Ref) {
		select {
		case ch <- r:
		default:
			panic("notification channel full")
		}
	})
	t.Cleanup(cancel)
	return ch
}

// waitRef waits for a notification about want, skipping others.
func waitRef(t testing.TB, ch <-chan Ref, want Ref) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case r := <-ch:
			if r == want {
				return
			}
		case <-deadline.C:
			t.Fatalf("no notification for %v within %v", want, timeout)
		}
	}
}

// waitUntil polls cond until it holds.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		<-tick.C
	}
}

func configMap(name string, kv ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n", name)
	if len(kv) > 0 {
		b.WriteString("data:\n")
		for i := 0; i+1 < len(kv); i += 2 {
			fmt.Fprintf(&b, "  %s: %q\n", kv[i], kv[i+1])
		}
	}
	return b.String()
}

func secret(name string, kv ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n", name)
	if len(kv) > 0 {
		b.WriteString("stringData:\n")
		for i := 0; i+1 < len(kv); i += 2 {
			fmt.Fprintf(&b, "  %s: %q\n", kv[i], kv[i+1])
		}
	}
	return b.String()
}

func cmRef(name string) Ref  { return Ref{KindConfigMap, "default", name} }
func secRef(name string) Ref { return Ref{KindSecret, "default", name} }

// cmData returns the ConfigMap's data[key], "<none>" when there is no such
// ConfigMap.
func cmData(t testing.TB, s Source, ns, name, key string) string {
	t.Helper()
	cm, err := s.ConfigMap(context.Background(), ns, name)
	if apierrors.IsNotFound(err) {
		return "<none>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data[key]
}

func secData(t testing.TB, s Source, ns, name, key string) string {
	t.Helper()
	sec, err := s.Secret(context.Background(), ns, name)
	if apierrors.IsNotFound(err) {
		return "<none>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(sec.Data[key])
}

// errorTexts returns d's errors with dir's path dropped from them.
func errorTexts(d *Dir, dir string) []string {
	var texts []string
	for _, err := range d.Errors() {
		texts = append(texts, strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
	}
	return texts
}

// capture is a slog handler that keeps the records' messages and errors.
type capture struct {
	mu      sync.Mutex
	records []string
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	s := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" {
			s += ": " + a.Value.String()
		}
		return true
	})
	c.mu.Lock()
	c.records = append(c.records, s)
	c.mu.Unlock()
	return nil
}

func (c *capture) warnings() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var w []string
	for _, r := range c.records {
		if strings.HasPrefix(r, "WARN ") {
			w = append(w, r)
		}
	}
	return w
}

func asFileError(t testing.TB, err error) *FileError {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("%v (%T) is not a *FileError", err, err)
	}
	return fe
}
