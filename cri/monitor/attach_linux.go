package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// clientWriteTimeout is how long the monitor waits for an attached client to take
// a frame of output before it drops the client: a stuck client must not stall the
// container (whose output the log also needs).
const clientWriteTimeout = 5 * time.Second

// shortPath returns a name for path that fits in a unix socket address (108 bytes,
// which a state dir plus a 64-character container id can exceed): the path
// through an O_PATH descriptor of its directory, /proc/self/fd/N/<base>. The
// caller closes dirfd once the socket is bound or connected.
func shortPath(path string) (addr string, dirfd int, err error) {
	dirfd, err = unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", -1, fmt.Errorf("attach socket %s: %w", path, err)
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, filepath.Base(path)), dirfd, nil
}

// attachServer is the monitor's side of the attach socket: it fans the container's
// output out to the attached clients and feeds their input to its stdin.
type attachServer struct {
	path string
	ln   *os.File // the listening socket, non-blocking

	// stdin is where client input goes: the write end of the container's stdin
	// pipe or the pty master; nil when the container has no stdin.
	stdin   *os.File
	stdinMu sync.Mutex // one client's frame at a time
	// closeStdin is set when the end of the first client's stdin closes the
	// container's stdin (StdinOnce without a terminal).
	closeStdin bool
	stdinOnce  sync.Once
	pty        *os.File // the terminal to resize; nil without one

	mu      sync.Mutex
	clients []*os.File
	closed  bool
}

// listenAttach creates the attach socket at path (replacing a stale one), mode 0600.
func listenAttach(path string) (*attachServer, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("attach socket: %w", err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("attach socket %s: %w", path, err)
	}
	addr, dirfd, err := shortPath(path)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: addr})
	unix.Close(dirfd)
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err == nil {
		err = unix.Listen(fd, 16)
	}
	if err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, fmt.Errorf("attach socket %s: %w", path, err)
	}
	return &attachServer{path: path, ln: os.NewFile(uintptr(fd), path)}, nil
}

// serve accepts clients until close.
func (a *attachServer) serve() {
	rc, err := a.ln.SyscallConn()
	if err != nil {
		return
	}
	for {
		var nfd int
		var aerr error
		err := rc.Read(func(fd uintptr) bool {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			return aerr != unix.EAGAIN
		})
		switch {
		case err != nil: // the listener was closed
			return
		case aerr == unix.ECONNABORTED || aerr == unix.EINTR:
			continue
		case aerr != nil:
			// Out of descriptors or memory: the pending client waits; try again
			// in a while rather than spin.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		c := os.NewFile(uintptr(nfd), "attach-client")
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.clients = append(a.clients, c)
		a.mu.Unlock()
		go a.serveClient(c)
	}
}

// serveClient reads one client's frames until it goes away.
func (a *attachServer) serveClient(c *os.File) {
	buf := make([]byte, maxFrame)
	hasStdin := false
	for {
		kind, p, err := readFrame(c, buf)
		if err != nil {
			break
		}
		switch kind {
		case frameStdin:
			hasStdin = true
			if len(p) > 0 && a.stdin != nil {
				a.stdinMu.Lock()
				_, _ = a.stdin.Write(p) // fails once the container is gone
				a.stdinMu.Unlock()
			}
		case frameStdinEOF:
			a.stdinEnded()
			hasStdin = false
		case frameResize:
			if size, err := decodeSize(p); err == nil && a.pty != nil {
				_ = setWinsize(a.pty, size) // fails only once the terminal is gone with the container
			}
		}
	}
	a.drop(c)
	if hasStdin {
		a.stdinEnded()
	}
}

// stdinEnded is called when an attached client's stdin ends (or the client with
// stdin went away): with StdinOnce, the container's stdin is closed the first time.
func (a *attachServer) stdinEnded() {
	if a.closeStdin && a.stdin != nil {
		a.stdinOnce.Do(func() { a.stdin.Close() })
	}
}

// drop forgets client c and closes its connection.
func (a *attachServer) drop(c *os.File) {
	a.mu.Lock()
	for i, x := range a.clients {
		if x == c {
			a.clients = append(a.clients[:i], a.clients[i+1:]...)
			break
		}
	}
	a.mu.Unlock()
	c.Close()
}

// broadcast sends frame (header included) to every client; a client that does not
// take it within clientWriteTimeout is dropped.
func (a *attachServer) broadcast(frame []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := 0; i < len(a.clients); i++ {
		c := a.clients[i]
		c.SetWriteDeadline(time.Now().Add(clientWriteTimeout))
		if _, err := c.Write(frame); err != nil {
			c.Close() // its reader sees the error and forgets it
			a.clients = append(a.clients[:i], a.clients[i+1:]...)
			i--
		}
	}
}

// close removes the socket, stops accepting and disconnects every client, which
// tells them the container is gone.
func (a *attachServer) close() {
	os.Remove(a.path)
	a.ln.Close()
	a.mu.Lock()
	a.closed = true
	clients := a.clients
	a.clients = nil
	a.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
}

// Attach connects to the container's stdio through its monitor's attach socket and
// copies until the container exits (its output ends: Attach returns nil), Stdin
// ends (see AttachIO.StdinOnce), writing its output fails (the error is returned),
// or ctx ends (returns ctx.Err()).
func Attach(ctx context.Context, socket string, aio AttachIO) error {
	conn, err := dialAttach(socket)
	if err != nil {
		return err
	}
	defer conn.Close()

	var wmu sync.Mutex
	send := func(frame []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := conn.Write(frame)
		return err
	}
	outDone := make(chan error, 1)
	stdinDone := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)

	go func() { outDone <- copyOutput(conn, aio.Stdout, aio.Stderr) }()
	if aio.Stdin != nil {
		if err := send(appendFrame(nil, frameStdin, nil)); err != nil {
			return fmt.Errorf("attach %s: %w", socket, err)
		}
		go func() {
			buf := make([]byte, frameHeader+32<<10)
			for {
				n, err := aio.Stdin.Read(buf[frameHeader:])
				if n > 0 {
					putHeader(buf, frameStdin, n)
					if send(buf[:frameHeader+n]) != nil {
						return // the monitor is gone; the output copy notices
					}
				}
				if err != nil {
					break
				}
			}
			if aio.StdinOnce {
				// An error: the monitor is gone, and the output copy notices.
				_ = send(appendFrame(nil, frameStdinEOF, nil))
				return // the container's stdin closes; wait for its output to end
			}
			stdinDone <- struct{}{}
		}()
	}
	if aio.Resize != nil {
		go func() {
			for {
				select {
				case size, ok := <-aio.Resize:
					if !ok {
						return
					}
					if send(appendFrame(nil, frameResize, encodeSize(size))) != nil {
						return
					}
				case <-stop:
					return
				}
			}
		}()
	}
	select {
	case err = <-outDone:
		return err
	case <-stdinDone:
		err = nil
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Stop the output copy before returning: the writers are the caller's again.
	conn.Close()
	<-outDone //nolint:errcheck // the copy's error is the Close's
	return err
}

// copyOutput copies the monitor's output frames to stdout and stderr until the
// monitor closes the connection.
func copyOutput(conn *os.File, stdout, stderr io.Writer) error {
	buf := make([]byte, maxFrame)
	for {
		kind, p, err := readFrame(conn, buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("attach: read from monitor: %w", err)
		}
		w := stdout
		if kind == frameStderr {
			w = stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("attach: write output: %w", err)
		}
	}
}

// dialAttach connects to the attach socket at path.
func dialAttach(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", path, err)
	}
	addr, dirfd, err := shortPath(path)
	if err == nil {
		// A unix socket connects at once or fails (EAGAIN: backlog full).
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: addr})
		unix.Close(dirfd)
	}
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			return nil, fmt.Errorf("attach %s: %w (%w)", path, ErrNotAttachable, err)
		}
		return nil, fmt.Errorf("attach %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// setWinsize sets the size of the terminal whose pty master is f. (Through
// SyscallConn: f.Fd() would put f in blocking mode, out of the poller.)
func setWinsize(f *os.File, size TerminalSize) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Height, Col: size.Width})
	})
	return errors.Join(err, ierr)
}
