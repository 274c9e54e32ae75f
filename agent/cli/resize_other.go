//go:build !unix

package cli

import "context"

// onResize does nothing where there is no SIGWINCH: the size stays the
// first one.
func onResize(context.Context, func()) {}
