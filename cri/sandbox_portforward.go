package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/podns"
)

// PortForward prepares a streaming port-forward into a ready pod and returns the
// URL the client connects to (see streaming.go). Each forwarded connection dials
// the port on the pod's loopback interface, inside its network namespace.
func (s *Server) PortForward(ctx context.Context, req *runtime.PortForwardRequest) (*runtime.PortForwardResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("pod_sandbox_id", "empty")
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, invalid("port", "%d is not a TCP port", p)
		}
	}
	rec, err := s.readySandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	req = proto.Clone(req).(*runtime.PortForwardRequest)
	req.PodSandboxId = rec.ID
	resp, err := s.stream.lib.GetPortForward(req)
	return resp, grpcError(codes.Internal, err, "port-forward to pod sandbox %s", rec.ID)
}

// readySandbox returns the record of the sandbox named by id, which must be
// ready: NotFound or FailedPrecondition otherwise.
func (s *Server) readySandbox(id string) (sandboxRecord, error) {
	sb, err := s.objs.sandbox(id)
	if err != nil {
		return sandboxRecord{}, err
	}
	rec := sb.snapshot()
	if rec.State != runtime.PodSandboxState_SANDBOX_READY {
		return sandboxRecord{}, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready", rec.ID)
	}
	return rec, nil
}

// portForwardSession forwards one client connection (stream) to port on the pod's
// loopback interface. The client's end of input is passed on (a TCP half-close);
// the session ends when the pod's side closes, or a side fails.
func (s *Server) portForwardSession(ctx context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("port %d is not a TCP port", port)
	}
	rec, err := s.readySandbox(sandboxID)
	if err != nil {
		return err
	}
	conn, err := dialPod(ctx, rec.Namespace[string(podns.Net)], port)
	if err != nil {
		return fmt.Errorf("pod sandbox %s: %w", rec.ID, err)
	}
	if err := s.stream.trackPodConn(conn); err != nil {
		return err
	}
	defer s.stream.untrackPodConn(conn)
	defer conn.Close()

	go func() {
		_, err := io.Copy(conn, stream)
		if tc, ok := conn.(interface{ CloseWrite() error }); ok && err == nil && tc.CloseWrite() == nil {
			return // the client is done sending
		}
		// The client's stream failed, or the pod cannot be told it ended: end
		// the session.
		conn.Close()
	}()
	_, err = io.Copy(stream, conn)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("pod sandbox %s port %d: %w", rec.ID, port, err)
	}
	return nil
}
