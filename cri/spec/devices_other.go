//go:build !linux

package spec

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// deviceFromPath is Linux-only; elsewhere no path is a device.
func deviceFromPath(p string) (specs.LinuxDevice, error) {
	return specs.LinuxDevice{}, fmt.Errorf("%s: %w", p, errNotDevice)
}
