//go:build !linux

package monitor

import (
	"context"
	"errors"
	"os"
)

// Attach is only supported on Linux.
func Attach(ctx context.Context, socket string, aio AttachIO) error { return errors.ErrUnsupported }

// Start is only supported on Linux.
func Start(ctx context.Context, binary, dir string, cfg Config) (*Process, error) {
	return nil, errors.ErrUnsupported
}

// Run is only supported on Linux.
func Run(cfg Config, sync *os.File) error { return errors.ErrUnsupported }

// Main is only supported on Linux.
func Main(args []string, sync *os.File) int { return 1 }
