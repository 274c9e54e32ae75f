//go:build !linux

package cri

import (
	"context"
	"io"
	"net"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// The streaming sessions need Linux (see os_other.go).

func (s *Server) execTerminal(context.Context, context.CancelFunc, string, *specs.Process, io.Reader, io.Writer, <-chan remotecommand.TerminalSize) (int, error) {
	return -1, errLinuxOnly
}

func dialPod(context.Context, string, int32) (net.Conn, error) { return nil, errLinuxOnly }
