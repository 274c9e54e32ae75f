package monitor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The attach protocol, spoken on a container's attach socket (Config.AttachSocket)
// between a client (Attach, in the shim) and the monitor. Both directions carry
// frames: a 1-byte kind, a 4-byte big-endian payload length, the payload.
//
//	client → monitor  frameStdin   data for the container's stdin; the empty frame,
//	                               sent first, announces a client with stdin
//	                  frameStdinEOF the client's stdin ended: with StdinOnce (and no
//	                               terminal) the container's stdin is closed
//	                  frameResize  width and height (2 × uint16), for a terminal
//	monitor → client  frameStdout, frameStderr  the container's output (a terminal's
//	                               output is all stdout)
//
// The monitor closes every client connection once the container has exited and
// its output is drained: EOF means the container is gone. A client that goes away
// costs the monitor nothing but its connection; when it had stdin, this counts as
// the end of its stdin.
const (
	frameStdin byte = iota
	frameStdout
	frameStderr
	frameResize
	frameStdinEOF
)

// frameHeader is the size of a frame's header.
const frameHeader = 5

// maxFrame bounds a frame's payload; bigger frames are a protocol error.
const maxFrame = 64 << 10

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// putHeader writes the header of a frame with a payload of n bytes into b.
func putHeader(b []byte, kind byte, n int) {
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:frameHeader], uint32(n))
}

// appendFrame appends a whole frame to dst.
func appendFrame(dst []byte, kind byte, payload []byte) []byte {
	var h [frameHeader]byte
	putHeader(h[:], kind, len(payload))
	return append(append(dst, h[:]...), payload...)
}

// readFrame reads one frame from r into buf (which must hold maxFrame bytes) and
// returns its kind and payload, a slice of buf. A clean EOF before a frame is
// io.EOF; EOF inside a frame is io.ErrUnexpectedEOF.
func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxFrame || int(n) > len(buf) {
		return 0, nil, fmt.Errorf("attach protocol: frame of %d bytes exceeds %d", n, min(maxFrame, len(buf)))
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return h[0], buf[:n], nil
}

func encodeSize(s TerminalSize) []byte {
	var b [4]byte
	binary.BigEndian.PutUint16(b[0:], s.Width)
	binary.BigEndian.PutUint16(b[2:], s.Height)
	return b[:]
}

func decodeSize(p []byte) (TerminalSize, error) {
	if len(p) != 4 {
		return TerminalSize{}, fmt.Errorf("attach protocol: resize frame of %d bytes, want 4", len(p))
	}
	return TerminalSize{Width: binary.BigEndian.Uint16(p[0:]), Height: binary.BigEndian.Uint16(p[2:])}, nil
}

// AttachIO says what an attached client reads and writes.
type AttachIO struct {
	// Stdin is copied to the container's stdin (when the container has one); nil
	// means no input.
	Stdin io.Reader
	// Stdout and Stderr receive the container's output from now on; nil drops the
	// stream. A terminal's output is all Stdout.
	Stdout, Stderr io.Writer
	// Resize carries terminal size changes.
	Resize <-chan TerminalSize
	// StdinOnce makes the end of Stdin close the container's stdin (containers
	// created with stdin_once and no terminal) and the attach last until the
	// container's output ends. Otherwise the end of Stdin ends the attach and
	// leaves the container's stdin open for the next client.
	StdinOnce bool
}

// ErrNotAttachable means nothing listens on the attach socket: the container is
// not running, or was started without one.
var ErrNotAttachable = errors.New("container cannot be attached to")
