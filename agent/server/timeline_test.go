package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodekit-dev/nodekit/agent/timeline"
)

// timelineProvider is fakeProvider with the pods' timelines.
type timelineProvider struct {
	*fakeProvider
	*timeline.Recorder
}

// proxyAuthorizer allows the proxy subresource when allow is set, and
// remembers what it was asked.
type proxyAuthorizer struct {
	mu    sync.Mutex
	allow bool
	asked []Attributes
}

func (a *proxyAuthorizer) Authorize(_ context.Context, at Attributes) (bool, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, at)
	return a.allow && at.Subresource == "proxy", "", nil
}

func timelineFixture(t *testing.T) (*timelineProvider, *v1.Pod) {
	t.Helper()
	pod := testPod("default", "web", "app")
	rec := timeline.New(timeline.Options{})
	rec.Add(pod)
	rec.Record(pod.UID, timeline.Entry{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Kind: timeline.Sync, Container: "app",
		What: "kill container", Reason: "liveness probe failed"})
	rec.Record(pod.UID, timeline.Entry{Kind: timeline.CRI, Container: "app", What: "StopContainer", Took: 1200 * time.Millisecond})
	return &timelineProvider{&fakeProvider{pods: []*v1.Pod{pod}}, rec}, pod
}

func TestTimelineMainPort(t *testing.T) {
	p, pod := timelineFixture(t)
	authz := &proxyAuthorizer{allow: true}
	o := baseOptions(t, p)
	o.AnonymousAuth = true
	o.Authorizer = authz
	o.NodeName = "node-a"
	s := start(t, o)
	c := tlsClient(t, o.CertDir, nil)

	code, body := get(t, c, mainURL(s, "/debug/pods/default/web/timeline"))
	if code != http.StatusOK {
		t.Fatalf("GET timeline: %d %s", code, body)
	}
	var tl timeline.Timeline
	if err := json.Unmarshal([]byte(body), &tl); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if tl.UID != pod.UID || len(tl.Entries) != 2 || tl.Entries[0].What != "kill container" || tl.Entries[1].Duration != "1.2s" {
		t.Errorf("timeline %+v", tl)
	}
	authz.mu.Lock()
	a := authz.asked[len(authz.asked)-1]
	authz.mu.Unlock()
	if a.Subresource != "proxy" || a.Verb != "get" || a.Resource != "nodes" || a.Name != "node-a" || a.User.Name != AnonymousUser {
		t.Errorf("authorized as %+v, want get nodes/proxy on node-a, as the kubelet's /debug paths", a)
	}

	code, body = get(t, c, mainURL(s, "/debug/pods/default/nope/timeline"))
	if code != http.StatusNotFound || !strings.Contains(body, "default/nope") {
		t.Errorf("unknown pod: %d %q, want 404 naming the pod", code, body)
	}

	authz.mu.Lock()
	authz.allow = false
	authz.mu.Unlock()
	if code, body := get(t, c, mainURL(s, "/debug/pods/default/web/timeline")); code != http.StatusForbidden {
		t.Errorf("refused: %d %s, want 403", code, body)
	}
}

func TestTimelineLocalSocket(t *testing.T) {
	p, pod := timelineFixture(t)
	o := baseOptions(t, p)
	o.Port, o.HealthzPort = -1, -1
	o.LocalSocket = filepath.Join(t.TempDir(), "kubelet.sock")
	start(t, o)

	tl, err := GetTimeline(context.Background(), o.LocalSocket, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if tl.Namespace != "default" || tl.Name != "web" || tl.UID != pod.UID || len(tl.Entries) != 2 ||
		tl.Entries[0].Reason != "liveness probe failed" || tl.Entries[1].Took != 0 || tl.Entries[1].Duration != "1.2s" {
		t.Errorf("timeline %+v", tl)
	}
	_, err = GetTimeline(context.Background(), o.LocalSocket, "default", "nope")
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "pod default/nope has no timeline") {
		t.Errorf("unknown pod: %v, want a 404 naming the pod", err)
	}
}

// TestTimelineNeedsProvider: without a TimelineProvider there is no such path.
func TestTimelineNeedsProvider(t *testing.T) {
	o := baseOptions(t, &fakeProvider{})
	o.Port, o.HealthzPort = -1, -1
	o.LocalSocket = filepath.Join(t.TempDir(), "kubelet.sock")
	start(t, o)
	code, body := get(t, unixClient(t, o.LocalSocket), "http://localhost/debug/pods/default/web/timeline")
	if code != http.StatusNotFound {
		t.Errorf("GET timeline without a provider: %d %s, want 404", code, body)
	}
	if _, err := GetTimeline(context.Background(), o.LocalSocket, "default", "web"); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("GetTimeline: %v, want an error", err)
	}
}
