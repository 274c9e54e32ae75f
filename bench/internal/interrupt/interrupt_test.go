package interrupt

import (
	"bufio"
	"context"
	"io"
	"syscall"
	"testing"
	"time"
)

// TestContext sends the test process SIGHUP twice: the first cancels, the
// second only says cleanup is in progress.
func TestContext(t *testing.T) {
	r, w := io.Pipe()
	ctx, cancel := Context(context.Background(), "bench", w)
	defer cancel()
	lines := bufio.NewScanner(r)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("no more output: %v", lines.Err())
		}
		return lines.Text()
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("canceled before any signal: %v", err)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "" {
		t.Errorf("first line %q, want an empty one", got)
	}
	if got, want := next(), "bench: hangup: stopping; cleaning up"; got != want {
		t.Errorf("after the first signal: %q, want %q", got, want)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("context not canceled 10 s after the signal")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got, want := next(), "bench: cleanup in progress, please wait"; got != want {
		t.Errorf("after the second signal: %q, want %q", got, want)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := Context(context.Background(), "bench", io.Discard)
	cancel()
	cancel() // twice is fine
	if ctx.Err() == nil {
		t.Error("not canceled by its CancelFunc")
	}
}
