package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// event renders one audit event line as the apiserver writes it.
func event(stage, verb, user, resource, sub string, at time.Time) string {
	ref := ""
	if resource != "" {
		ref = fmt.Sprintf(`,"objectRef":{"resource":%q,"subresource":%q,"namespace":"default","apiVersion":"v1"}`, resource, sub)
	}
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":%q,"requestURI":"/api/v1/x","verb":%q,"user":{"username":%q,"groups":["system:nodes"]}%s,"requestReceivedTimestamp":%q,"stageTimestamp":%q}`,
		stage, verb, user, ref, at.Format("2006-01-02T15:04:05.000000Z07:00"), at.Add(time.Millisecond).Format("2006-01-02T15:04:05.000000Z07:00"))
}

func TestCountRequests(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	from, to := t0, t0.Add(2*time.Minute)
	node, other := "system:node:n1", "system:node:n2"
	lines := []string{
		// In the window, counted.
		event("ResponseComplete", "update", node, "leases", "", t0.Add(time.Second)),
		event("ResponseComplete", "update", node, "leases", "", t0.Add(11*time.Second)),
		event("ResponseComplete", "get", node, "nodes", "", t0.Add(12*time.Second)),
		event("ResponseComplete", "patch", node, "pods", "status", t0.Add(13*time.Second)),
		event("ResponseStarted", "watch", node, "configmaps", "", t0.Add(14*time.Second)),
		// Watch completion and a non-watch's ResponseStarted: not counted again.
		event("ResponseComplete", "watch", node, "configmaps", "", t0.Add(15*time.Second)),
		event("ResponseStarted", "get", node, "pods", "log", t0.Add(16*time.Second)),
		// Another user, or outside the window (the end is excluded).
		event("ResponseComplete", "update", other, "leases", "", t0.Add(time.Second)),
		event("ResponseComplete", "update", node, "leases", "", t0.Add(-time.Microsecond)),
		event("ResponseComplete", "update", node, "leases", "", to),
		"",
		// A request without an object (a non-resource URL).
		event("ResponseComplete", "get", node, "", "", t0.Add(20*time.Second)),
	}
	c, err := countRequests(strings.NewReader(strings.Join(lines, "\n")), node, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if c.Requests != 5 || c.Watches != 1 {
		t.Errorf("requests %d, watches %d; want 5, 1", c.Requests, c.Watches)
	}
	if c.Seconds != 120 || c.PerMinute() != 2.5 || c.WatchesPerMinute() != 0.5 {
		t.Errorf("seconds %v, per minute %v, watches per minute %v; want 120, 2.5, 0.5", c.Seconds, c.PerMinute(), c.WatchesPerMinute())
	}
	want := map[string]int{"update leases": 2, "get nodes": 1, "patch pods/status": 1, "watch configmaps": 1, "get /api/v1/x": 1}
	if len(c.ByKind) != len(want) {
		t.Errorf("by kind %v, want %v", c.ByKind, want)
	}
	for k, n := range want {
		if c.ByKind[k] != n {
			t.Errorf("by kind %q: %d, want %d (all: %v)", k, c.ByKind[k], n, c.ByKind)
		}
	}
	top := c.topKinds(3)
	if wantTop := []string{"update leases 1.0", "get /api/v1/x 0.5", "get nodes 0.5"}; !slices.Equal(top, wantTop) {
		t.Errorf("topKinds(3) = %q, want %q", top, wantTop)
	}
}

func TestCountRequestsBadLine(t *testing.T) {
	_, err := countRequests(strings.NewReader("{\"stage\":\"ResponseComplete\"}\nnot json\n"), "u", time.Time{}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err = %v, want one naming line 2", err)
	}
}

func TestPerMinuteEmptyWindow(t *testing.T) {
	if got := (requestCounts{Requests: 3}).PerMinute(); got != 0 {
		t.Errorf("PerMinute of a zero window = %v, want 0", got)
	}
}
