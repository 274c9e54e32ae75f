package probes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	criclient "k8s.io/cri-client/pkg"
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

func isTimeout(err error) bool {
	return errors.Is(err, criclient.ErrCommandTimedOut) ||
		errors.Is(err, context.DeadlineExceeded) ||
		status.Code(err) == codes.DeadlineExceeded
}
