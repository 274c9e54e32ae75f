package probes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// execTimeoutSlack is how long past the probe's timeout the runtime gets to
// report before the call is abandoned (the runtime enforces the timeout).
const execTimeoutSlack = 2 * time.Second

// execProbe runs cmd in the container through the CRI's ExecSync: exit code 0
// is success, another exit code or a timeout is a failure, anything else an
// error.
func execProbe(ctx context.Context, r ExecRunner, containerID string, cmd []string, timeout time.Duration) (outcome, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+execTimeoutSlack)
	defer cancel()
	stdout, stderr, err := r.ExecSync(ctx, containerID, cmd, timeout)
	out := string(stdout) + string(stderr)
	if err == nil {
		return outcomeSuccess, out, nil
	}
	var exit interface{ ExitStatus() int }
	if errors.As(err, &exit) {
		if exit.ExitStatus() == 0 {
			return outcomeSuccess, out, nil
		}
		return outcomeFailure, out, nil
	}
	if isTimeout(err) {
		return outcomeFailure, fmt.Sprintf("command %q timed out after %s", strings.Join(cmd, " "), timeout), nil
	}
	return outcomeFailure, out, fmt.Errorf("exec probe in container %s: %w", containerID, err)
}

// criClientTimedOut is the text of k8s.io/cri-client's ErrCommandTimedOut, which
// its ExecSync returns, wrapped, in place of the runtime's gRPC
// DeadlineExceeded status. It is recognized by its text anywhere in the error's
// chain, so that probes need not import cri-client (and the OpenTelemetry
// packages it brings) for one error value; a test checks it against the real
// value.
const criClientTimedOut = "command timed out"

// isTimeout reports whether an ExecSync error says the command timed out: a
// context deadline, a gRPC DeadlineExceeded status, or cri-client's
// ErrCommandTimedOut.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		return true
	}
	return inChain(err, func(e error) bool { return e.Error() == criClientTimedOut })
}

// inChain reports whether match holds for err or an error it wraps (through
// Unwrap() error or Unwrap() []error).
func inChain(err error, match func(error) bool) bool {
	if err == nil {
		return false
	}
	if match(err) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return inChain(u.Unwrap(), match)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if inChain(e, match) {
				return true
			}
		}
	}
	return false
}
