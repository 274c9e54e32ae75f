package monitor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer and a polling reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// attachment is an Attach running in the background.
type attachment struct {
	stdin          *io.PipeWriter
	stdout, stderr *syncBuffer
	resize         chan TerminalSize
	cancel         context.CancelFunc
	done           chan error
}

func attach(t *testing.T, socket string, withStdin, stdinOnce bool) *attachment {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &attachment{stdout: &syncBuffer{}, stderr: &syncBuffer{}, resize: make(chan TerminalSize, 1), cancel: cancel, done: make(chan error, 1)}
	aio := AttachIO{Stdout: a.stdout, Stderr: a.stderr, Resize: a.resize, StdinOnce: stdinOnce}
	if withStdin {
		var r *io.PipeReader
		r, a.stdin = io.Pipe()
		aio.Stdin = r
	}
	go func() { a.done <- Attach(ctx, socket, aio) }()
	t.Cleanup(func() {
		cancel()
		if a.stdin != nil {
			a.stdin.Close()
		}
	})
	return a
}

// wait returns what Attach returned, failing the test if it has not returned in time.
func (a *attachment) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-a.done:
		return err
	case <-time.After(timeout):
		t.Fatalf("Attach still running after %v", timeout)
		return nil
	}
}

func (a *attachment) running() bool {
	select {
	case err := <-a.done:
		a.done <- err
		return false
	default:
		return true
	}
}

// longStateDir returns a directory whose attach socket path is longer than a
// socket address may be.
func longStateDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRuncAttachStdinFanOutAndReattach(t *testing.T) {
	e := newContainer(t, []string{"sh", "-c", "echo started; cat; echo stdin-closed"}, nil)
	cfg := e.config()
	cfg.Stdin = true
	cfg.AttachSocket = filepath.Join(longStateDir(t), "attach.sock")
	p := e.start(t, cfg)

	watcher := attach(t, cfg.AttachSocket, false, false) // output only
	writer := attach(t, cfg.AttachSocket, true, false)
	// The watcher may connect after the first line: write until it sees one.
	waitFor(t, "the echo to reach both clients", 10*time.Second, func() bool {
		if _, err := io.WriteString(writer.stdin, "hello\n"); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(writer.stdout.String(), "hello\n") && strings.Contains(watcher.stdout.String(), "hello\n")
	})
	// The end of a client's stdin ends its attach but leaves the container's stdin
	// open for the next client.
	writer.stdin.Close()
	if err := writer.wait(t, 10*time.Second); err != nil {
		t.Fatalf("attach after its stdin ended: %v", err)
	}
	// A client that goes away does not disturb the monitor either.
	gone := attach(t, cfg.AttachSocket, true, false)
	gone.cancel()
	if err := gone.wait(t, 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled attach returned %v", err)
	}
	again := attach(t, cfg.AttachSocket, true, false)
	if _, err := io.WriteString(again.stdin, "again\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second echo", 10*time.Second, func() bool { return strings.Contains(watcher.stdout.String(), "again\n") })
	if out := watcher.stdout.String(); strings.Contains(out, "stdin-closed") {
		t.Fatalf("watcher saw %q: the container's stdin was closed", out)
	}
	if !watcher.running() {
		t.Fatal("the output-only attach ended while the container runs")
	}

	// The container's exit ends every attach with success.
	syscall.Kill(p.ContainerPid, syscall.SIGKILL)
	for _, a := range []*attachment{watcher, again} {
		if err := a.wait(t, 30*time.Second); err != nil {
			t.Errorf("attach at container exit: %v", err)
		}
	}
	e.finish(t, p, cfg, 30*time.Second)
	var logged strings.Builder
	for _, en := range readLog(t, cfg.LogPath) {
		logged.WriteString(string(en.Content) + "\n")
	}
	// The log holds what the watcher saw, and the first line, which the watcher
	// may have attached too late for.
	if got, want := logged.String(), "started\n"+strings.TrimPrefix(watcher.stdout.String(), "started\n"); got != want {
		t.Errorf("log holds %q, want what the watcher saw: %q", got, want)
	}
	if _, err := os.Stat(cfg.AttachSocket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("attach socket left after exit: %v", err)
	}
	if err := Attach(context.Background(), cfg.AttachSocket, AttachIO{}); !errors.Is(err, ErrNotAttachable) {
		t.Errorf("Attach after exit = %v, want ErrNotAttachable", err)
	}
}

func TestRuncAttachStdinOnce(t *testing.T) {
	e := newContainer(t, []string{"sh", "-c", "cat; echo done; echo to-stderr >&2"}, nil)
	cfg := e.config()
	cfg.Stdin, cfg.StdinOnce = true, true
	cfg.AttachSocket = filepath.Join(e.state, "attach.sock")
	p := e.start(t, cfg)

	a := attach(t, cfg.AttachSocket, true, true)
	if _, err := io.WriteString(a.stdin, "one\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the echo", 10*time.Second, func() bool { return strings.Contains(a.stdout.String(), "one\n") })
	// The end of the first client's stdin closes the container's: cat ends, and the
	// attach lasts until the container's output ends.
	a.stdin.Close()
	if err := a.wait(t, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if a.stdout.String() != "one\ndone\n" || a.stderr.String() != "to-stderr\n" {
		t.Errorf("stdout %q, stderr %q", a.stdout.String(), a.stderr.String())
	}
	if exit := e.finish(t, p, cfg, 30*time.Second); exit.ExitCode != 0 {
		t.Errorf("exit record %+v", exit)
	}
}

func TestRuncAttachTerminalResize(t *testing.T) {
	e := newContainer(t, []string{"sh", "-c", "while read line; do busybox stty size; done"}, func(spec map[string]any) {
		spec["process"].(map[string]any)["terminal"] = true
	})
	cfg := e.config()
	cfg.Terminal, cfg.Stdin = true, true
	cfg.AttachSocket = filepath.Join(e.state, "attach.sock")
	p := e.start(t, cfg)

	a := attach(t, cfg.AttachSocket, true, false)
	a.resize <- TerminalSize{Width: 123, Height: 45}
	// The resize and the input travel separately: ask until the new size shows.
	waitFor(t, "the new terminal size", 10*time.Second, func() bool {
		if _, err := io.WriteString(a.stdin, "x\n"); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(a.stdout.String(), "45 123")
	})
	if a.stderr.String() != "" {
		t.Errorf("a terminal's output went to stderr: %q", a.stderr.String())
	}
	syscall.Kill(p.ContainerPid, syscall.SIGKILL)
	if err := a.wait(t, 30*time.Second); err != nil {
		t.Error(err)
	}
	e.finish(t, p, cfg, 30*time.Second)
}
