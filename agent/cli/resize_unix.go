//go:build unix

package cli

import (
	"context"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// onResize calls f whenever the terminal's size changes, until ctx ends.
func onResize(ctx context.Context, f func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGWINCH)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				f()
			}
		}
	}()
}
