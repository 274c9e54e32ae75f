package monitor

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// consoleSocket is the unix socket a runtime sends the pty master of a terminal
// container to (runc --console-socket), as SCM_RIGHTS.
type consoleSocket struct {
	dir, path string
	fd        int
}

func listenConsole() (*consoleSocket, error) {
	// A fresh short directory: socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "nodekit-monitor-")
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	s := &consoleSocket{dir: dir, path: filepath.Join(dir, "console.sock"), fd: -1}
	// Non-blocking: the runtime has connected and sent the pty before it exited,
	// so receive never needs to wait.
	s.fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err == nil {
		err = unix.Bind(s.fd, &unix.SockaddrUnix{Name: s.path})
	}
	if err == nil {
		err = unix.Listen(s.fd, 1)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("console socket %s: %w", s.path, err)
	}
	return s, nil
}

// receive accepts the runtime's connection and returns the pty master it sent.
func (s *consoleSocket) receive() (*os.File, error) {
	conn, _, err := unix.Accept4(s.fd, unix.SOCK_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("console socket %s: runtime did not connect: %w", s.path, err)
	}
	defer unix.Close(conn)
	buf := make([]byte, 256) // runc sends the pty name as data
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
	if err != nil {
		return nil, fmt.Errorf("console socket %s: receive pty: %w", s.path, err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("console socket %s: no pty received (%d messages, %v)", s.path, len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("console socket %s: no pty received (%d fds, %v)", s.path, len(fds), err)
	}
	// Non-blocking, so that the os.File uses the poller and Close interrupts Read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("console socket %s: %w", s.path, err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func (s *consoleSocket) Close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
	}
	os.RemoveAll(s.dir)
}
