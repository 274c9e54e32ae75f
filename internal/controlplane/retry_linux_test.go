package controlplane

import (
	"net"
	"strings"
	"sync"
	"testing"
)

// TestStartRetriesALostPort hands the first start an apiserver port that
// another listener holds (as when another process takes a port between the
// pick and the bind): the apiserver exits with "address already in use", and
// the start must succeed with new ports instead of failing the test.
func TestStartRetriesALostPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var (
		mu    sync.Mutex
		calls int
		logs  []string
	)
	pickPorts = func(n int) ([]int, error) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		ports, err := freePorts(n)
		if err == nil && first {
			ports[2] = taken.Addr().(*net.TCPAddr).Port // the apiserver's
		}
		return ports, err
	}
	t.Cleanup(func() { pickPorts = freePorts })
	cp := Start(t, Options{Logf: func(format string, args ...any) {
		mu.Lock()
		logs = append(logs, format)
		mu.Unlock()
		t.Logf(format, args...)
	}})
	if strings.HasSuffix(cp.URL, ":"+strings.Split(taken.Addr().String(), ":")[1]) {
		t.Fatalf("the control plane claims the taken port: %s", cp.URL)
	}
	if _, err := cp.Kubectl(t, "get", "--raw", "/readyz"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("ports picked %d times, want 2 (one retry)", calls)
	}
	if len(logs) == 0 || !strings.Contains(logs[0], "starting again") {
		t.Errorf("the retry was not logged: %q", logs)
	}
}
