//go:build !linux

package layer

import (
	"context"
	"errors"
	"io"
)

// Apply unpacks a layer; it needs Linux (openat2, mknod whiteouts, overlayfs xattrs).
func Apply(ctx context.Context, dir string, r io.Reader, opts Options) (Stats, error) {
	return Stats{}, errors.New("layer: unpacking layers is supported on Linux only")
}
