package interrupt

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Signals are the signals Context catches.
var Signals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// Context returns a context that is canceled at the first of Signals, when
// "\n<prog>: <signal>: stopping; cleaning up" is written to w; each later one
// writes "<prog>: cleanup in progress, please wait" and is otherwise ignored.
// The CancelFunc cancels the context and stops catching the signals.
func Context(parent context.Context, prog string, w io.Writer) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, Signals...)
	stopped := make(chan struct{})
	go func() {
		first := true
		for {
			select {
			case s := <-sigc:
				if first {
					fmt.Fprintf(w, "\n%s: %v: stopping; cleaning up\n", prog, s)
					cancel()
					first = false
				} else {
					fmt.Fprintf(w, "%s: cleanup in progress, please wait\n", prog)
				}
			case <-stopped:
				return
			}
		}
	}()
	return ctx, sync.OnceFunc(func() {
		signal.Stop(sigc)
		cancel()
		close(stopped)
	})
}

// Ignore ignores Signals: for a cleanup that must run to the end, and has no
// measurement to cancel.
func Ignore() { signal.Ignore(Signals...) }
