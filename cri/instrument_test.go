package cri

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// panicky is a RuntimeService whose calls panic, fail or succeed.
type panicky struct {
	runtime.UnimplementedRuntimeServiceServer
}

func (panicky) Version(context.Context, *runtime.VersionRequest) (*runtime.VersionResponse, error) {
	var names []string
	_ = names[len(names)] //nolint:gocritic // an index out of range: a real runtime panic, deliberately
	return nil, nil
}

func (panicky) Status(context.Context, *runtime.StatusRequest) (*runtime.StatusResponse, error) {
	return &runtime.StatusResponse{}, nil
}

func (panicky) ContainerStatus(_ context.Context, req *runtime.ContainerStatusRequest) (*runtime.ContainerStatusResponse, error) {
	if req.ContainerId == "" {
		return nil, status.Error(codes.InvalidArgument, "container_id: empty")
	}
	return nil, status.Error(codes.Internal, "kill container x: disk on fire")
}

func (panicky) GetContainerEvents(*runtime.GetEventsRequest, grpc.ServerStreamingServer[runtime.ContainerEventResponse]) error {
	panic("stream handler bug")
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Every call goes through the wrapper: a panic becomes Internal and the server
// keeps serving; every failure is logged on the server side, at Error for the
// server's faults and Info for the client's; successes at Debug. An interceptor the
// embedder put on its grpc.Server still runs.
func TestInstrument(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var intercepted []string
	var mu sync.Mutex
	g := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		mu.Lock()
		intercepted = append(intercepted, info.FullMethod)
		mu.Unlock()
		return h(ctx, req)
	}))
	g.RegisterService(instrument(&runtime.RuntimeService_ServiceDesc, log), panicky{})
	l := bufconn.Listen(1 << 20)
	go func() { _ = g.Serve(l) }() // nil after Stop; before, the calls fail
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return l.Dial() }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rt := runtime.NewRuntimeServiceClient(conn)
	ctx := context.Background()

	_, err = rt.Version(ctx, &runtime.VersionRequest{})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("Version that panics: err = %v, want Internal mentioning the panic", err)
	}
	// The server survived the panic.
	if _, err := rt.Status(ctx, &runtime.StatusRequest{}); err != nil {
		t.Fatalf("Status after a panic: %v", err)
	}
	_, err = rt.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: "x"})
	if status.Code(err) != codes.Internal {
		t.Fatalf("ContainerStatus: %v", err)
	}
	_, err = rt.ContainerStatus(ctx, &runtime.ContainerStatusRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("ContainerStatus without id: %v", err)
	}
	_, err = rt.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("ListPodSandbox (unimplemented): %v", err)
	}
	stream, err := rt.GetContainerEvents(ctx, &runtime.GetEventsRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Internal {
		t.Fatalf("GetContainerEvents that panics: %v", err)
	}

	out := logs.String()
	for _, want := range []string{
		`level=ERROR msg="CRI call panicked" method=Version panic="runtime error: index out of range [0] with length 0" stack=`,
		`level=ERROR msg="CRI call failed" method=Version code=Internal`,
		`level=DEBUG msg="CRI call" method=Status`,
		`level=ERROR msg="CRI call failed" method=ContainerStatus code=Internal err="kill container x: disk on fire"`,
		`level=INFO msg="CRI call failed" method=ContainerStatus code=InvalidArgument err="container_id: empty"`,
		`level=INFO msg="CRI call failed" method=ListPodSandbox code=Unimplemented`,
		`level=ERROR msg="CRI call panicked" method=GetContainerEvents panic="stream handler bug"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("server log lacks %q:\n%s", want, out)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(intercepted) != 5 || intercepted[0] != "/runtime.v1.RuntimeService/Version" {
		t.Errorf("the server's own interceptor saw %v, want the 5 unary calls", intercepted)
	}
}
