package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/nodekit-dev/nodekit/cri/monitor"
	"github.com/nodekit-dev/nodekit/cri/runc"
)

// execTerminal runs a process on a new terminal: runc sends the pty master to a
// console socket, which it does only detached (`runc exec -d`), so the monitor
// binary in reap mode runs runc and reports the process's exit. The client's
// input and output are copied to and from the master, and resize events set its
// window size.
func (s *Server) execTerminal(ctx context.Context, cancel context.CancelFunc, id string, proc *specs.Process, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) (int, error) {
	// A short directory of its own: socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "nodekit-exec-")
	if err != nil {
		return -1, fmt.Errorf("exec in %s: console socket: %w", id, err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return -1, fmt.Errorf("exec in %s: console socket: %w", id, err)
	}
	defer l.Close()

	type result struct {
		code int
		err  error
	}
	exited := make(chan result, 1)
	go func() {
		code, err := s.oci.Exec(ctx, id, runc.ExecOptions{
			Process:       proc,
			Dir:           s.paths.containerState(id),
			ConsoleSocket: sock,
			Reaper:        []string{s.opts.Monitor, monitor.ReapArg},
		})
		exited <- result{code, err}
	}()
	type received struct {
		master *os.File
		err    error
	}
	masters := make(chan received, 1)
	go func() {
		m, err := receivePty(l)
		masters <- received{m, err}
	}()

	var pty received
	var res *result
	select {
	case pty = <-masters:
	case r := <-exited:
		// The process is gone already: the terminal the runtime sent waits in the
		// socket's backlog.
		res = &r
		if err := l.SetDeadline(time.Now().Add(time.Second)); err != nil {
			l.Close() // ends the accept all the same
		}
		pty = <-masters
	}
	if pty.err != nil {
		cancel() // kills the process, if the runtime started one
		if res == nil {
			r := <-exited
			res = &r
		}
		if res.err != nil {
			return -1, res.err
		}
		return -1, fmt.Errorf("exec in %s: %w: %w", id, errExecNotStarted, pty.err)
	}
	master := pty.master
	defer master.Close()

	finished := make(chan struct{})
	defer close(finished)
	go func() {
		for {
			select {
			case size, ok := <-resize:
				if !ok {
					return
				}
				if err := setWinsize(master, size.Width, size.Height); err != nil {
					s.log.Debug("exec: resize the terminal", "container", id, "err", err)
				}
			case <-finished:
				return
			}
		}
	}()
	if in != nil {
		// The end of the client's input does not end a terminal's: keystrokes do
		// (^D). The copy ends when the client's stream closes or the pty does.
		go func() { _, _ = io.Copy(master, in) }()
	}
	if out == nil {
		out = io.Discard // the pty must still be drained
	}
	var copies sync.WaitGroup
	copies.Add(1)
	go func() {
		defer copies.Done()
		// Reading the master fails with EIO once the terminal is hung up.
		if err := copyOutput(out, master); err != nil {
			cancel()
		}
	}()
	if res == nil {
		r := <-exited
		res = &r
	}
	waitOrClose(&copies, execDrainTimeout, []*os.File{master})
	return res.code, res.err
}

// receivePty accepts the runtime's connection on the console socket and returns
// the pty master it sends (SCM_RIGHTS), non-blocking so that closing it stops a
// read.
func receivePty(l *net.UnixListener) (*os.File, error) {
	conn, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return nil, fmt.Errorf("receive pty: %w", err)
	}
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(make([]byte, 256), oob) // runc sends the pty's name as data
	if err != nil {
		return nil, fmt.Errorf("receive pty: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive pty: %d control messages (%v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive pty: %d descriptors (%v)", len(fds), err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("receive pty: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// setWinsize sets the size of the terminal whose master is f. (f.Fd() would put f
// in blocking mode, out of the poller.)
func setWinsize(f *os.File, width, height uint16) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width})
	})
	return errors.Join(err, ierr)
}
