package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
	streamspdy "k8s.io/streaming/pkg/httpstream/spdy"

	"github.com/nodekit-dev/nodekit/agent"
)

type execOptions struct {
	target
	container string
	stdin     bool
	tty       bool
	quiet     bool
}

func newExecCommand() *cobra.Command {
	var o execOptions
	cmd := &cobra.Command{
		Use:   "exec POD [-c CONTAINER] [flags] -- COMMAND [args...]",
		Short: "Execute a command in a container",
		Long: `Run a command in a container of a pod, as kubectl exec does: with -i its
standard input is this one's, with -t it runs on a terminal (this one, put in
raw mode, its size followed). The command's exit code is this one's.`,
		Example: `  # A shell in the web server's container
  nodekit-kubelet exec -it web-node-a -- sh

  # One command
  nodekit-kubelet exec web-node-a -- cat /etc/resolv.conf`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			switch {
			case len(args) == 0:
				return usageErrorf(cmd, "pod must be specified")
			case dash == -1 && len(args) > 1:
				return usageErrorf(cmd, "exec [POD] [COMMAND] is not supported: use exec [POD] -- [COMMAND]")
			case dash > 1:
				return usageErrorf(cmd, "exec takes one pod before --, got %s", strings.Join(args[:dash], " "))
			case dash == -1 || dash == len(args):
				return usageErrorf(cmd, "you must specify at least one command for the container")
			}
			name := strings.TrimPrefix(strings.TrimPrefix(args[0], "pods/"), "pod/")
			return o.run(cmd.Context(), cmd, name, args[dash:])
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.container, "container", "c", "", "the container (default: the pod's first)")
	f.BoolVarP(&o.stdin, "stdin", "i", false, "pass this standard input to the command")
	f.BoolVarP(&o.tty, "tty", "t", false, "run the command on a terminal (with -i, when standard input is one)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "only print what the command writes")
	return cmd
}

func (o *execOptions) run(ctx context.Context, cmd *cobra.Command, name string, command []string) error {
	c := o.client()
	pod, err := o.pod(ctx, c, name)
	if err != nil {
		return err
	}
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		return fmt.Errorf("cannot exec into a container in a completed pod; current phase is %s", pod.Status.Phase)
	}
	errOut := cmd.ErrOrStderr()
	msgs := errOut
	if o.quiet {
		msgs = io.Discard
	}
	ctr, err := pickContainer(pod, o.container, msgs)
	if err != nil {
		return err
	}

	streams := remotecommand.StreamOptions{Stdout: cmd.OutOrStdout(), Stderr: errOut}
	if o.stdin {
		streams.Stdin = cmd.InOrStdin()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.stdin && o.tty {
		f, ok := streams.Stdin.(*os.File)
		if ok && term.IsTerminal(int(f.Fd())) {
			fd := int(f.Fd())
			state, err := term.MakeRaw(fd)
			if err != nil {
				return fmt.Errorf("terminal: %w", err)
			}
			defer func() {
				if err := term.Restore(fd, state); err != nil {
					fmt.Fprintln(errOut, "terminal: restoring its state:", err)
				}
			}()
			streams.Tty, streams.Stderr = true, nil
			streams.TerminalSizeQueue = followSize(ctx, fd)
		} else {
			fmt.Fprintln(msgs, "Unable to use a TTY - input is not a terminal or the right kind of file")
		}
	}

	q := url.Values{"command": command, "output": {"1"}}
	if streams.Stdin != nil {
		q.Set("input", "1")
	}
	if streams.Tty {
		q.Set("tty", "1")
	} else {
		q.Set("error", "1")
	}
	u := &url.URL{Scheme: "http", Host: "localhost", RawQuery: q.Encode(),
		Path: "/exec/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name) + "/" + url.PathEscape(ctr)}
	// The SPDY round tripper dials through UpgradeTransport: the agent's
	// socket, whatever the URL's host.
	socket := agent.LocalSocket(o.rootDir)
	rt, err := streamspdy.NewRoundTripperWithConfig(streamspdy.RoundTripperConfig{UpgradeTransport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dialUnix(ctx, socket) },
	}})
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	exe, err := remotecommand.NewSPDYExecutorForTransports(rt, spdy.NewUpgraderForStreaming(rt), http.MethodPost, u)
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	err = exe.StreamWithContext(ctx, streams)
	var exit utilexec.CodeExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		return &exitCodeError{code: exit.Code}
	}
	var sock *socketError
	if errors.As(c.explain(err), &sock) {
		return sock
	}
	return fmt.Errorf("exec in container %s of pod %s: %w", ctr, pod.Name, err)
}

// sizeQueue gives the terminal's size, then each new size, until its
// context ends.
type sizeQueue struct {
	ctx   context.Context
	sizes chan remotecommand.TerminalSize
}

func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case s := <-q.sizes:
		return &s
	case <-q.ctx.Done():
		return nil
	}
}

// followSize reports the size of the terminal fd now and whenever it
// changes (SIGWINCH), until ctx ends.
func followSize(ctx context.Context, fd int) remotecommand.TerminalSizeQueue {
	q := &sizeQueue{ctx: ctx, sizes: make(chan remotecommand.TerminalSize, 1)}
	send := func() {
		w, h, err := term.GetSize(fd)
		if err != nil {
			return
		}
		select { // the newest size wins
		case <-q.sizes:
		default:
		}
		q.sizes <- remotecommand.TerminalSize{Width: uint16(w), Height: uint16(h)}
	}
	send()
	onResize(ctx, send)
	return q
}
