package cri

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// instrument returns a copy of desc whose every method and stream goes through one
// wrapper, as containerd's instrument package does for its CRI service:
//
//   - a panic in a handler becomes an Internal error (logged with its stack) instead
//     of killing the shim and, when it is embedded, the whole kubelet;
//   - every failed call is logged on the server side, with its method, code and
//     duration: server faults at Error, the client's own mistakes (InvalidArgument,
//     NotFound, AlreadyExists, FailedPrecondition, a cancelled call) at Info, so that
//     an error a client reports can be found in the shim's log too;
//   - successful calls are logged at Debug with their duration.
//
// Wrapping the service description rather than each method keeps the wrapper in
// one place and covers every RPC the generated code has, including the ones the
// Unimplemented base answers. An interceptor the caller configured on its
// grpc.Server still runs, inside this wrapper.
func instrument(desc *grpc.ServiceDesc, log *slog.Logger) *grpc.ServiceDesc {
	out := *desc
	out.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		name := m.MethodName
		inner := m.Handler
		out.Methods[i] = grpc.MethodDesc{
			MethodName: name,
			Handler: func(srv any, ctx context.Context, dec func(any) error, next grpc.UnaryServerInterceptor) (resp any, err error) {
				start := time.Now()
				defer func() {
					if r := recover(); r != nil {
						err = panicError(log, name, r)
						resp = nil
					}
					logCall(log, name, start, err)
				}()
				return inner(srv, ctx, dec, next)
			},
		}
	}
	out.Streams = make([]grpc.StreamDesc, len(desc.Streams))
	for i, sd := range desc.Streams {
		name := sd.StreamName
		inner := sd.Handler
		sd.Handler = func(srv any, stream grpc.ServerStream) (err error) {
			start := time.Now()
			defer func() {
				if r := recover(); r != nil {
					err = panicError(log, name, r)
				}
				logCall(log, name, start, err)
			}()
			return inner(srv, stream)
		}
		out.Streams[i] = sd
	}
	return &out
}

// panicError logs a recovered panic with its stack and turns it into the error the
// client receives.
func panicError(log *slog.Logger, method string, r any) error {
	log.Error("CRI call panicked", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "%s: panic in the runtime: %v", method, r)
}

// logCall writes the one line a call gets: Debug on success, Info for the client's
// own mistakes, Error for the server's.
func logCall(log *slog.Logger, method string, start time.Time, err error) {
	d := time.Since(start)
	if err == nil {
		log.Debug("CRI call", "method", method, "duration", d)
		return
	}
	st := status.Convert(err)
	level := slog.LevelError
	switch st.Code() {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition,
		codes.OutOfRange, codes.Unimplemented, codes.Canceled, codes.Unauthenticated, codes.PermissionDenied:
		level = slog.LevelInfo
	}
	log.Log(context.Background(), level, "CRI call failed", "method", method, "code", st.Code().String(),
		"err", st.Message(), "duration", d)
}
