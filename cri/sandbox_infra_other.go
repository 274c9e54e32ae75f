//go:build !linux

package cri

// The pod's PID namespace holder is Linux-only, as the whole runtime.

type infraProcess struct {
	pid   int
	start uint64
}

func spawnInfra(string, string, map[string]string, *podUserns) (*infraProcess, error) {
	return nil, errLinuxOnly
}
func (*infraProcess) release() error                         { return errLinuxOnly }
func (*infraProcess) abort() error                           { return nil }
func (*infraProcess) wait()                                  {}
func pinPidNamespace(int, string) error                      { return errLinuxOnly }
func unpinPidNamespace(string) error                         { return nil }
func (s *Server) placeInfraCgroup(*sandboxRecord, int) error { return nil }
func (s *Server) removeInfraCgroup(string) error             { return nil }
