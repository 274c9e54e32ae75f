//go:build !linux

package eviction

import (
	"context"
	"errors"
	"fmt"
)

// probe fails: kernel memory notifications need Linux cgroups.
func (n *MemoryNotifier) probe() error {
	return fmt.Errorf("kernel memory notifications need Linux: %w", errors.ErrUnsupported)
}

// Run fails: kernel memory notifications need Linux cgroups.
func (n *MemoryNotifier) Run(ctx context.Context, notify func()) error {
	return fmt.Errorf("eviction: %s: %w", n, errors.ErrUnsupported)
}
