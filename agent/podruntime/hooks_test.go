package podruntime

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type hookServer struct{ *httptest.Server }

func newHookServer(t *testing.T, got chan<- string) *hookServer {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.URL.Path + " " + r.Header.Get("X-Hook"):
		default:
		}
	}))
	t.Cleanup(s.Close)
	return &hookServer{s}
}

func (s *hookServer) hostPort(t *testing.T) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func intstrFromString(s string) intstr.IntOrString { return intstr.FromString(s) }

func TestResolvePort(t *testing.T) {
	c := &v1.Container{Ports: []v1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	tests := []struct {
		in      intstr.IntOrString
		want    int
		wantErr bool
	}{
		{intstr.FromInt32(81), 81, false},
		{intstr.FromString("9090"), 9090, false},
		{intstr.FromString("http"), 8080, false},
		{intstr.FromString(""), 80, false},
		{intstr.FromString("grpc"), 0, true},
	}
	for _, tt := range tests {
		got, err := resolvePort(tt.in, c)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("resolvePort(%v) = %d, %v; want %d (error %t)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
