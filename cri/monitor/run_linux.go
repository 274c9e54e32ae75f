package monitor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
	"github.com/nodekit-dev/nodekit/cri/crilog"
)

// drainTimeout bounds how long output is still copied after the container init
// exited: processes it left behind (in a host PID namespace) may hold the pipes.
// It also bounds reading a failed runtime's message.
const drainTimeout = 2 * time.Second

// errLostTrack means the container init process could not be reaped.
var errLostTrack = errors.New("lost track of the container process: it is not a child of the monitor")

// Main is the monitor binary's main: it reads the Config file named by args[0],
// runs the monitor with sync as its sync pipe, and returns the exit status. With
// ReapArg as args[0] it runs in reap mode instead (sync is unused).
func Main(args []string, sync *os.File) int {
	if len(args) > 0 && args[0] == ReapArg {
		return reapMain(args[1:])
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: nodekit-monitor CONFIG-FILE  (sync pipe on fd 3)")
		fmt.Fprintln(os.Stderr, "       nodekit-monitor "+ReapArg+" PIDFILE RUNTIME [ARGS...]")
		return 2
	}
	cfg, err := ReadConfig(args[0])
	if err != nil {
		_ = writeSync(sync, syncMessage{Error: err.Error()}) // an error: the shim is gone, nobody to tell
		sync.Close()
		return 1
	}
	if err := Run(cfg, sync); err != nil {
		return 1
	}
	return 0
}

// Run is the monitor: it starts the container described by cfg, reports the
// outcome on sync (and closes it), supervises the container to its exit and
// writes the Exit record. It returns once the container is gone (and deleted, with
// DeleteOnExit). It makes the calling process a child subreaper that reaps all its
// children, and takes over its signal handling: it owns its process.
func Run(cfg Config, sync *os.File) error {
	fail := func(err error) error {
		_ = writeSync(sync, syncMessage{Error: err.Error()}) // an error: the shim is gone, nobody to tell
		sync.Close()
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	// Keep the sync pipe out of the runtime and the container.
	syscall.CloseOnExec(int(sync.Fd()))

	m := &monitor{cfg: cfg.withDefaults(), sigs: make(chan os.Signal, 16)}
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGPIPE)
	signal.Notify(m.sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGUSR1)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("become child subreaper: %w", err))
	}
	if err := m.start(); err != nil {
		return fail(err)
	}
	// A write error means the shim is gone: the container runs anyway, and the exit
	// file will tell how it ended.
	_ = writeSync(sync, syncMessage{Pid: m.pid})
	sync.Close()

	exit := m.supervise()
	if err := writeExit(m.cfg.ExitFile, exit); err != nil {
		return err
	}
	if m.cfg.DeleteOnExit {
		return m.delete()
	}
	return nil
}

// stream is one output of the container being copied into the log and to the
// attached clients.
type stream struct {
	name string // crilog.Stdout or crilog.Stderr
	kind byte   // frameStdout or frameStderr
	f    *os.File
}

// monitor is the state of Run. Everything but the output copies runs on Run's
// goroutine, which waits for children by waiting for SIGCHLD: no thread is ever
// blocked in wait4, which keeps the process at a few threads.
type monitor struct {
	cfg         Config
	sigs        chan os.Signal
	pid         int // of the container init, once known
	termPending bool
	streams     []stream
	sink        *crilog.Sink // nil: output is discarded
	oom         *oomCounter
	attach      *attachServer // nil: no attach socket
	stdin       *os.File      // write end of the container's stdin pipe, if any
	errs        []string      // problems to report in the Exit record
}

// start runs the container and returns once the runtime has exited, leaving the
// container init process as a child of this (subreaper) process.
func (m *monitor) start() (err error) {
	cfg := m.cfg
	defer func() {
		if err != nil {
			m.close()
		}
	}()
	if err := os.MkdirAll(filepath.Dir(cfg.ExitFile), 0o755); err != nil {
		return fmt.Errorf("exit file directory: %w", err)
	}
	if cfg.LogPath != "" {
		if m.sink, err = crilog.Open(cfg.LogPath); err != nil {
			return err
		}
	}
	if cfg.AttachSocket != "" {
		if m.attach, err = listenAttach(cfg.AttachSocket); err != nil {
			return err
		}
		m.attach.closeStdin = cfg.StdinOnce && !cfg.Terminal
	}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer stdin.Close()
	if cfg.Stdin && !cfg.Terminal {
		// The container's stdin stays open, for attached clients, until the
		// container exits (or, with StdinOnce, the first client's input ends).
		devnull := stdin
		if stdin, m.stdin, err = os.Pipe(); err != nil {
			return err
		}
		devnull.Close()
		defer stdin.Close()
		if m.attach != nil {
			m.attach.stdin = m.stdin
		}
	}

	// runtimeErr is where the runtime's stderr is read from when it fails.
	var runtimeErr, stdout, stderr *os.File
	var console *consoleSocket
	args := []string{"run", "-d"}
	if cfg.Terminal {
		// runc keeps its own stdio; the container's output comes from the pty.
		if runtimeErr, stderr, err = os.Pipe(); err != nil {
			return err
		}
		defer runtimeErr.Close()
		stdout = stderr
		if console, err = listenConsole(); err != nil {
			stderr.Close()
			return err
		}
		defer console.Close()
		args = append(args, "--console-socket", console.path)
	} else {
		// In detached mode runc passes its stdio on to the container.
		var outR, errR *os.File
		if outR, stdout, err = os.Pipe(); err != nil {
			return err
		}
		m.streams = append(m.streams, stream{crilog.Stdout, frameStdout, outR})
		if errR, stderr, err = os.Pipe(); err != nil {
			stdout.Close()
			return err
		}
		m.streams = append(m.streams, stream{crilog.Stderr, frameStderr, errR})
		runtimeErr = errR
	}
	args = append(args, "--pid-file", cfg.PidFile, "--bundle", cfg.Bundle, cfg.ID)
	ws, err := m.runtime([]*os.File{stdin, stdout, stderr}, args...)
	// Only the container (and what it spawns) may hold the write ends (and the
	// read end of stdin) now.
	stdin.Close()
	stdout.Close()
	if stderr != stdout {
		stderr.Close()
	}
	if err != nil {
		return err
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return runtimeFailure(cfg, "run", ws, readAvailable(runtimeErr))
	}
	// The container runs: if it cannot be supervised, it must not stay behind.
	defer func() {
		if err != nil {
			if derr := m.delete(); derr != nil {
				err = fmt.Errorf("%w (and %w)", err, derr)
			}
		}
	}()

	if console != nil {
		pty, err := console.receive()
		if err != nil {
			return err
		}
		m.streams = append(m.streams, stream{crilog.Stdout, frameStdout, pty})
		if m.attach != nil {
			m.attach.pty = pty
			if cfg.Stdin {
				m.attach.stdin = pty
			}
		}
	}
	data, err := os.ReadFile(cfg.PidFile)
	if err != nil {
		return fmt.Errorf("container %s started but its pid is unknown: %w", cfg.ID, err)
	}
	if m.pid, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil || m.pid <= 0 {
		return fmt.Errorf("container %s started but pid file %s holds %q", cfg.ID, cfg.PidFile, data)
	}
	// The init process cannot have been reaped yet (it is our child), so its cgroup
	// is still known even if it already exited.
	m.oom = newOOMCounter(cfg.CgroupRoot, m.pid)
	if m.termPending {
		unix.Kill(m.pid, unix.SIGTERM)
	}
	return nil
}

// runtime runs `<runtime> <global flags> args...` with stdio and waits for it to
// exit.
func (m *monitor) runtime(stdio []*os.File, args ...string) (unix.WaitStatus, error) {
	argv := []string{m.cfg.Runtime}
	if m.cfg.RuntimeRoot != "" {
		argv = append(argv, "--root", m.cfg.RuntimeRoot)
	}
	argv = append(append(argv, m.cfg.RuntimeArgs...), args...)
	fds := make([]uintptr, len(stdio))
	for i, f := range stdio {
		fds[i] = f.Fd()
	}
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Dir: "/", Env: os.Environ(), Files: fds})
	if err != nil {
		return 0, fmt.Errorf("run %s %s: %w", m.cfg.Runtime, args[0], err)
	}
	return m.wait(pid, false)
}

// delete removes the container's runtime state and cgroup, killing what is left
// of it.
func (m *monitor) delete() error {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer errR.Close()
	// The container has exited, so a plain delete does: `--force` would cost a
	// fixed 100 ms sleep in runc (it waits for a kill it need not send). It is
	// the fallback for a container the runtime still thinks is running.
	ws, err := m.runtime([]*os.File{devnull, devnull, devnull}, "delete", m.cfg.ID)
	if err == nil && ws.Exited() && ws.ExitStatus() == 0 {
		errW.Close()
		return nil
	}
	ws, err = m.runtime([]*os.File{devnull, devnull, errW}, "delete", "--force", m.cfg.ID)
	errW.Close()
	if err != nil {
		return err
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return runtimeFailure(m.cfg, "delete", ws, readAvailable(errR))
	}
	return nil
}

// readAvailable reads what a runtime that has exited left in its stderr pipe: until
// EOF, or what came within drainTimeout if something else still holds the pipe.
func readAvailable(f *os.File) []byte {
	f.SetReadDeadline(time.Now().Add(drainTimeout))
	data, _ := io.ReadAll(io.LimitReader(f, 64<<10))
	return data
}

func runtimeFailure(cfg Config, verb string, ws unix.WaitStatus, stderr []byte) error {
	if msg := runtimeMessage(stderr); msg != "" {
		return errors.New(msg)
	}
	status := fmt.Sprintf("exit status %d", ws.ExitStatus())
	if ws.Signaled() {
		status = "killed by " + ws.Signal().String()
	}
	return fmt.Errorf("%s %s %s: %s and no message", filepath.Base(cfg.Runtime), verb, cfg.ID, status)
}

// wait waits for the child pid to exit and reaps it; with reapAll it reaps every
// other child that exits meanwhile too. Between rounds it waits for a signal:
// SIGCHLD, or one it acts on.
//
// Only the wait for the container init reaps all: the init may die right after
// the runtime exits, and its status must not be lost while waiting for the runtime.
func (m *monitor) wait(pid int, reapAll bool) (unix.WaitStatus, error) {
	which := pid
	if reapAll {
		which = -1
	}
	for {
		for {
			var ws unix.WaitStatus
			wpid, err := unix.Wait4(which, &ws, unix.WNOHANG, nil)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.ECHILD && pid == m.pid:
				return 0, errLostTrack
			case err != nil:
				return 0, fmt.Errorf("wait for process %d: %w", pid, err)
			case wpid == pid:
				return ws, nil
			}
			if wpid == 0 {
				break
			}
		}
		switch <-m.sigs {
		case unix.SIGTERM:
			if m.pid > 0 {
				unix.Kill(m.pid, unix.SIGTERM)
			} else {
				m.termPending = true
			}
		case unix.SIGUSR1:
			if m.sink != nil {
				if err := m.sink.Reopen(); err != nil {
					m.errs = append(m.errs, err.Error())
				}
			}
		}
	}
}

// supervise copies the output until the container init exits, then drains it
// and returns the exit record.
func (m *monitor) supervise() Exit {
	if m.attach != nil {
		go m.attach.serve()
	}
	copies := make(chan error, len(m.streams))
	for _, s := range m.streams {
		go func() { copies <- m.copy(s) }()
	}
	exit := Exit{Pid: m.pid}
	ws, err := m.wait(m.pid, true)
	exit.FinishedAt = time.Now().UTC()
	m.pid = 0 // reaped: the pid may be reused, signal it no more
	switch {
	case err != nil:
		exit.ExitCode = UnknownExitCode
		m.errs = append(m.errs, err.Error())
	case ws.Signaled():
		exit.Signal = int(ws.Signal())
		exit.ExitCode = 128 + int32(ws.Signal())
	default:
		exit.ExitCode = int32(ws.ExitStatus())
	}

	drain := time.NewTimer(drainTimeout)
	for range m.streams {
		select {
		case err := <-copies:
			m.logError(err)
			continue
		case <-drain.C:
			// Unblock the copies still reading; they flush what they have.
			for _, s := range m.streams {
				s.f.Close()
			}
		}
		m.logError(<-copies)
	}
	drain.Stop()
	m.close()

	exit.OOMKilled = m.oom.killed()
	exit.Error = strings.Join(m.errs, "; ")
	return exit
}

func (m *monitor) logError(err error) {
	if err != nil {
		m.errs = append(m.errs, "log write failed: "+err.Error())
	}
}

// copy copies one stream into the log and to the attached clients until EOF (EIO
// for a pty whose other side is closed) or until the stream is closed, and returns
// the first log write error.
func (m *monitor) copy(s stream) error {
	// Room for a frame header in front: the buffer is an attach frame as it is.
	// 4 KiB in all: the size is felt in every monitor's Pss (8 KiB buffers cost
	// 30 KiB more, see TestMonitorMemory), and the log writer does not care how
	// output is chunked.
	buf := make([]byte, 4<<10)
	var w *crilog.Writer
	if m.sink != nil {
		w = crilog.NewWriter(m.sink, s.name, m.cfg.LogMaxLine)
	}
	var werr error
	for {
		n, err := s.f.Read(buf[frameHeader:])
		if n > 0 && w != nil {
			if _, e := w.Write(buf[frameHeader : frameHeader+n]); e != nil && werr == nil {
				werr = e
			}
		}
		if n > 0 && m.attach != nil {
			putHeader(buf, s.kind, n)
			m.attach.broadcast(buf[:frameHeader+n])
		}
		if err != nil {
			break
		}
	}
	if w != nil {
		if e := w.Close(); e != nil && werr == nil {
			werr = e
		}
	}
	return werr
}

// close closes the streams, the attach socket (disconnecting its clients), the
// container's stdin and the log.
func (m *monitor) close() {
	if m.attach != nil {
		m.attach.close()
		m.attach = nil
	}
	if m.stdin != nil {
		m.stdin.Close()
		m.stdin = nil
	}
	for _, s := range m.streams {
		s.f.Close()
	}
	m.streams = nil
	if m.sink != nil {
		m.logError(m.sink.Close())
		m.sink = nil
	}
}

// writeExit writes the exit record, the only place the container's exit status
// survives. A full file system (ENOSPC, EDQUOT) or an I/O error does not lose it:
// the monitor keeps trying, backing off up to exitRetryMax, for as long as it
// takes the node to free space; meanwhile the shim reports the container as
// running, as its record says. Only a state directory that is gone (the shim
// removed the container's state, or the machine's state was wiped) ends it.
func writeExit(path string, exit Exit) error {
	delay := exitRetryFirst
	for {
		err := atomicfile.ReplaceJSON(path, exit, 0o644)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return err
		}
		fmt.Fprintf(os.Stderr, "nodekit-monitor: %v; retrying in %s\n", err, delay)
		time.Sleep(delay)
		delay = min(2*delay, exitRetryMax)
	}
}

// The back-off of writeExit.
var exitRetryFirst, exitRetryMax = 100 * time.Millisecond, 5 * time.Second
