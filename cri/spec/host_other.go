//go:build !linux

package spec

import "errors"

// DetectHost is Linux-only.
func DetectHost() (Host, error) {
	return Host{}, errors.New("spec.DetectHost: containers need Linux")
}
