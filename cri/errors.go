package cri

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// invalid returns an InvalidArgument error naming the request field at fault.
func invalid(field, format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, fmt.Sprintf(format, args...))
}

// grpcError keeps an error that already carries a gRPC status and wraps any other
// error as code with context.
func grpcError(code codes.Code, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		st := se.GRPCStatus()
		return status.Errorf(st.Code(), "%s: %s", fmt.Sprintf(format, args...), st.Message())
	}
	return status.Errorf(code, "%s: %v", fmt.Sprintf(format, args...), err)
}

// cleanups runs undo steps in reverse order unless disarmed: a failed create leaves
// nothing behind.
type cleanups struct {
	steps []func() error
	done  bool
}

func (c *cleanups) add(f func() error) { c.steps = append(c.steps, f) }

func (c *cleanups) disarm() { c.done = true }

func (c *cleanups) run() error {
	if c.done {
		return nil
	}
	var errs []error
	for i := len(c.steps) - 1; i >= 0; i-- {
		if err := c.steps[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
