package ctxio

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReaderPassesReadsThrough(t *testing.T) {
	if err := iotest.TestReader(NewReader(context.Background(), strings.NewReader("hello, world")), []byte("hello, world")); err != nil {
		t.Error(err)
	}
}

func TestReaderFailsOnceDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := NewReader(ctx, iotest.OneByteReader(strings.NewReader("abc")))
	buf := make([]byte, 4)
	if n, err := r.Read(buf); n != 1 || err != nil {
		t.Fatalf("Read before cancel = %d, %v; want 1, nil", n, err)
	}
	cancel()
	if n, err := r.Read(buf); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("Read after cancel = %d, %v; want 0, context.Canceled", n, err)
	}
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, context.Canceled) {
		t.Errorf("io.Copy after cancel: err = %v, want context.Canceled", err)
	}
}
