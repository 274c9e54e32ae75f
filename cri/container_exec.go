package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/nodekit-dev/nodekit/cri/runc"
)

// execDrainTimeout bounds how long an exec session still copies output after the
// process exited: processes it left in the background may hold its stdout.
const execDrainTimeout = 2 * time.Second

// Exec prepares a streaming exec in a running container and returns the URL the
// client connects to (see streaming.go); the command runs once it does.
func (s *Server) Exec(ctx context.Context, req *runtime.ExecRequest) (*runtime.ExecResponse, error) {
	switch {
	case req.GetContainerId() == "":
		return nil, invalid("container_id", "empty")
	case len(req.GetCmd()) == 0:
		return nil, invalid("cmd", "empty")
	case req.GetTty() && req.GetStderr():
		return nil, invalid("stderr", "cannot be set with tty (a terminal has one output)")
	case !req.GetStdin() && !req.GetStdout() && !req.GetStderr():
		return nil, invalid("stdin, stdout, stderr", "none is set")
	}
	rec, err := s.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	req = proto.Clone(req).(*runtime.ExecRequest)
	req.ContainerId = rec.ID // the session must not resolve a prefix again
	resp, err := s.stream.lib.GetExec(req)
	return resp, grpcError(codes.Internal, err, "exec in container %s", rec.ID)
}

// runningContainer returns the record of the container named by id, which must be
// running: NotFound or FailedPrecondition otherwise.
func (s *Server) runningContainer(id string) (containerRecord, error) {
	c, err := s.objs.container(id)
	if err != nil {
		return containerRecord{}, err
	}
	rec := c.snapshot()
	if rec.State != runtime.ContainerState_CONTAINER_RUNNING {
		return containerRecord{}, status.Errorf(codes.FailedPrecondition, "container %s is %s, not running", rec.ID, stateName(rec.State))
	}
	return rec, nil
}

// execSession runs cmd in the container for a streaming client, as the container's
// process runs (its config.json process, with cmd as its args). The process is
// killed when the client goes away (ctx ends) or stops taking output. A non-zero
// exit code is returned as an exitError.
func (s *Server) execSession(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.Writer, tty bool, resize <-chan remotecommand.TerminalSize) error {
	rec, err := s.runningContainer(id)
	if err != nil {
		return err
	}
	sp, err := s.specOf(rec.ID)
	if err != nil {
		return fmt.Errorf("container %s: read spec: %w", rec.ID, err)
	}
	proc := *sp.Process
	proc.Args = cmd
	proc.Terminal = tty
	proc.ConsoleSize = nil
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var code int
	if tty {
		code, err = s.execTerminal(ctx, cancel, rec.ID, &proc, in, out, resize)
	} else {
		code, err = s.execPipes(ctx, cancel, rec.ID, &proc, in, out, errOut)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		// The client went away (or the server is closing): no one to tell.
		s.log.Debug("exec session ended without its client", "container", rec.ID, "cmd", cmd, "err", err)
		return nil
	case err != nil:
		return err
	case code != 0:
		return exitError{code}
	}
	return nil
}

// execPipes runs a process without a terminal, its stdio connected to the client's
// streams by pipes.
func (s *Server) execPipes(ctx context.Context, cancel context.CancelFunc, id string, proc *specs.Process, in io.Reader, out, errOut io.Writer) (int, error) {
	opts := runc.ExecOptions{Process: proc, Dir: s.paths.containerState(id)}
	var ours []*os.File // our ends, closed on return
	defer func() {
		for _, f := range ours {
			f.Close()
		}
	}()
	if in != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return -1, err
		}
		// The read end is kept open until the process is gone, so a client writing
		// after the process stopped reading blocks instead of failing; closing it
		// on return ends that copy.
		ours = append(ours, r)
		opts.Stdin = r
		go func() {
			// An error (the process is gone) ends the input all the same.
			_, _ = io.Copy(w, in)
			w.Close() // the process sees the end of its input
		}()
	}
	var copies sync.WaitGroup
	var writeEnds []*os.File
	for _, o := range []struct {
		client io.Writer
		stdio  *io.Writer
	}{{out, &opts.Stdout}, {errOut, &opts.Stderr}} {
		if o.client == nil {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return -1, err
		}
		ours = append(ours, r)
		writeEnds = append(writeEnds, w)
		*o.stdio = w
		copies.Add(1)
		go func() {
			defer copies.Done()
			if err := copyOutput(o.client, r); err != nil {
				cancel() // the client stopped taking output: it is gone
			}
		}()
	}
	code, err := s.oci.Exec(ctx, id, opts)
	for _, w := range writeEnds {
		w.Close()
	}
	waitOrClose(&copies, execDrainTimeout, ours)
	return code, err
}

// copyOutput copies a process's output to a client until EOF; it returns an error
// only when writing to the client fails.
func copyOutput(client io.Writer, r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return nil
		}
	}
}

// waitOrClose waits for the copies, closing files after timeout to stop those
// still reading, and waits again.
func waitOrClose(copies *sync.WaitGroup, timeout time.Duration, files []*os.File) {
	done := make(chan struct{})
	go func() {
		copies.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(timeout):
	}
	for _, f := range files {
		f.Close()
	}
	<-done
}

// errExecNotStarted means a terminal exec ended without the runtime handing over
// the terminal.
var errExecNotStarted = errors.New("the runtime sent no terminal")
