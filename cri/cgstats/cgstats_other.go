//go:build !linux

package cgstats

import "errors"

var errLinuxOnly = errors.New("cgstats: cgroups exist on Linux only")

func detectVersion(string) (int, error) { return 0, errLinuxOnly }
func newV1(string) (Reader, error)      { return nil, errLinuxOnly }
func newV2(string) (Reader, error)      { return nil, errLinuxOnly }
