package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodekit-dev/nodekit/agent"
)

// fakeAgent serves the agent's local API on <root>/kubelet.sock from what
// the test puts in it: pods, node, summary, timelines, logs.
type fakeAgent struct {
	root string

	mu        sync.Mutex
	pods      []v1.Pod
	node      *v1.Node
	summary   *statsapi.Summary
	timelines map[string]*podTimeline // namespace/name
	logs      map[string]string       // namespace/pod/container, "?previous" appended for the previous instance
	queries   []string                // the query of each /containerLogs request
	// polled, when not nil, gates /pods: each request reads the pods once
	// the test received from it.
	polled chan struct{}
}

func newFakeAgent(t *testing.T) *fakeAgent {
	t.Helper()
	f := &fakeAgent{root: t.TempDir(), timelines: map[string]*podTimeline{}, logs: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pods", func(w http.ResponseWriter, r *http.Request) {
		if f.polled != nil {
			select { // wait for the test to let this request read the pods
			case f.polled <- struct{}{}:
			case <-r.Context().Done():
				return
			}
		}
		f.mu.Lock()
		l := v1.PodList{Items: f.pods}
		f.mu.Unlock()
		l.Kind, l.APIVersion = "PodList", "v1"
		writeJSON(w, l)
	})
	mux.HandleFunc("GET /node", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, f.node)
	})
	mux.HandleFunc("GET /stats/summary", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, f.summary)
	})
	mux.HandleFunc("GET /debug/pods/{namespace}/{name}/timeline", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		tl := f.timelines[r.PathValue("namespace")+"/"+r.PathValue("name")]
		if tl == nil {
			http.Error(w, "no timeline", http.StatusNotFound)
			return
		}
		writeJSON(w, tl)
	})
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("namespace") + "/" + r.PathValue("pod") + "/" + r.PathValue("container")
		if r.URL.Query().Get("previous") == "true" {
			key += "?previous"
		}
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.RawQuery)
		text, ok := f.logs[key]
		f.mu.Unlock()
		if !ok {
			http.Error(w, fmt.Sprintf("logs of %s: not found", key), http.StatusNotFound)
			return
		}
		w.Write([]byte(text))
	})
	l, err := net.Listen("unix", agent.LocalSocket(f.root))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v) // as ResponseWriter.Write: the client may have left
}

func (f *fakeAgent) setPods(pods ...v1.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods = pods
}

// run runs the command line with args (and --root-dir of the fake, before
// any --) and returns its output, error output and exit code.
func (f *fakeAgent) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return f.runContext(t.Context(), args...)
}

func (f *fakeAgent) runContext(ctx context.Context, args ...string) (string, string, int) {
	return runCLI(ctx, nil, withRootDir(args, f.root)...)
}

// withRootDir adds --root-dir dir to a command's arguments, before any --.
func withRootDir(args []string, dir string) []string {
	out := append([]string{}, args...)
	i := len(out)
	for j, a := range out {
		if a == "--" {
			i = j
			break
		}
	}
	return append(out[:i], append([]string{"--root-dir", dir}, args[i:]...)...)
}

// runCLI runs NewCommand's tree with args, stdin as its input.
func runCLI(ctx context.Context, stdin *strings.Reader, args ...string) (string, string, int) {
	cmd := NewCommand(Options{Version: "0.1.0-test"})
	var out, errOut syncBuffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if stdin != nil {
		cmd.SetIn(stdin)
	} else {
		cmd.SetIn(strings.NewReader(""))
	}
	code := Main(ctx, cmd, args)
	return out.String(), errOut.String(), code
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
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

// The fixtures: a node-a with a web pod and a crash-looping one.
var t0 = time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)

func webPod() v1.Pod {
	p := v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-node-a", Namespace: "default", UID: "uid-web",
			Labels: map[string]string{"app": "web"}, CreationTimestamp: metav1.NewTime(t0)},
		Spec: v1.PodSpec{NodeName: "node-a", Containers: []v1.Container{{Name: "httpd", Image: "busybox"}}},
		Status: v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.88.0.5", PodIPs: []v1.PodIP{{IP: "10.88.0.5"}}, HostIP: "192.0.2.2",
			Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}},
			ContainerStatuses: []v1.ContainerStatus{{Name: "httpd", Ready: true,
				State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}}}},
	}
	return p
}

func crashPod() v1.Pod {
	p := v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "crashloop-node-a", Namespace: "default", UID: "uid-crash",
			CreationTimestamp: metav1.NewTime(t0)},
		Spec: v1.PodSpec{NodeName: "node-a", Containers: []v1.Container{{Name: "app", Image: "busybox", Command: []string{"sh", "-c", "exit 1"}}}},
		Status: v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.88.0.6", HostIP: "192.0.2.2",
			ContainerStatuses: []v1.ContainerStatus{{Name: "app", RestartCount: 2,
				State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error",
					StartedAt: metav1.NewTime(t0.Add(30 * time.Second)), FinishedAt: metav1.NewTime(t0.Add(31 * time.Second))}}}}},
	}
	return p
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
