package monitor

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    byte
		payload []byte
	}{
		{"stdin hello", frameStdin, nil},
		{"stdout data", frameStdout, []byte("hello\n")},
		{"stderr binary", frameStderr, []byte{0, 1, 2, 255}},
		{"resize", frameResize, encodeSize(TerminalSize{Width: 132, Height: 43})},
		{"stdin eof", frameStdinEOF, nil},
		{"largest", frameStdout, bytes.Repeat([]byte("x"), maxFrame)},
	} {
		var stream []byte
		stream = appendFrame(stream, tc.kind, tc.payload)
		stream = appendFrame(stream, frameStdinEOF, nil) // a second frame follows
		r := bytes.NewReader(stream)
		buf := make([]byte, maxFrame)
		kind, p, err := readFrame(r, buf)
		if err != nil || kind != tc.kind || !bytes.Equal(p, tc.payload) {
			t.Errorf("%s: readFrame = %d, %d bytes, %v; want %d, %d bytes", tc.name, kind, len(p), err, tc.kind, len(tc.payload))
			continue
		}
		if kind, p, err := readFrame(r, buf); err != nil || kind != frameStdinEOF || len(p) != 0 {
			t.Errorf("%s: second frame = %d, %q, %v", tc.name, kind, p, err)
		}
		if _, _, err := readFrame(r, buf); err != io.EOF {
			t.Errorf("%s: after the last frame: %v, want io.EOF", tc.name, err)
		}
	}
}

func TestFrameErrors(t *testing.T) {
	full := appendFrame(nil, frameStdout, []byte("hello"))
	oversize := make([]byte, frameHeader)
	putHeader(oversize, frameStdout, maxFrame+1)
	for _, tc := range []struct {
		name    string
		data    []byte
		bufSize int
		want    error
		wantMsg string
	}{
		{"empty", nil, maxFrame, io.EOF, ""},
		{"half a header", full[:3], maxFrame, io.ErrUnexpectedEOF, ""},
		{"truncated payload", full[:len(full)-1], maxFrame, io.ErrUnexpectedEOF, ""},
		{"over the maximum", oversize, maxFrame, nil, "exceeds"},
		{"over the buffer", full, 4, nil, "exceeds 4"},
	} {
		_, _, err := readFrame(bytes.NewReader(tc.data), make([]byte, tc.bufSize))
		switch {
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		case tc.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tc.wantMsg)):
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.wantMsg)
		}
	}
}

func TestDecodeSize(t *testing.T) {
	for _, tc := range []struct {
		payload []byte
		want    TerminalSize
		ok      bool
	}{
		{encodeSize(TerminalSize{80, 24}), TerminalSize{80, 24}, true},
		{encodeSize(TerminalSize{65535, 1}), TerminalSize{65535, 1}, true},
		{[]byte{0, 80, 0}, TerminalSize{}, false},
		{nil, TerminalSize{}, false},
	} {
		got, err := decodeSize(tc.payload)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("decodeSize(%v) = %v, %v; want %v (ok %v)", tc.payload, got, err, tc.want, tc.ok)
		}
	}
}
