package main

// Counting a node agent's API requests in the apiserver's audit log
// (controlplane.Options.AuditLog: JSON lines, level Metadata, stages
// ResponseStarted and ResponseComplete).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// auditEvent is the part of an audit.k8s.io/v1 Event the benchmark reads.
type auditEvent struct {
	Stage string `json:"stage"`
	Verb  string `json:"verb"`
	User  struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	RequestURI string    `json:"requestURI"`
	Received   time.Time `json:"requestReceivedTimestamp"`
}

// what names the request's kind: "get nodes", "patch pods/status".
func (e *auditEvent) what() string {
	if e.ObjectRef == nil || e.ObjectRef.Resource == "" {
		return e.Verb + " " + e.RequestURI
	}
	r := e.ObjectRef.Resource
	if e.ObjectRef.Subresource != "" {
		r += "/" + e.ObjectRef.Subresource
	}
	return e.Verb + " " + r
}

// requestCounts are one user's API requests received in a window.
type requestCounts struct {
	User    string  `json:"user"`
	Seconds float64 `json:"seconds"`
	// Requests: every request but watches, counted at ResponseComplete.
	Requests int `json:"requests"`
	// Watches: watch requests opened (ResponseStarted) in the window.
	Watches int `json:"watches_opened"`
	// ByKind: Requests and Watches by verb and resource ("get nodes").
	ByKind map[string]int `json:"by_kind"`
}

// PerMinute is Requests per minute.
func (c requestCounts) PerMinute() float64 { return perMinute(c.Requests, c.Seconds) }

// WatchesPerMinute is Watches per minute.
func (c requestCounts) WatchesPerMinute() float64 { return perMinute(c.Watches, c.Seconds) }

func perMinute(n int, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(n) * 60 / seconds
}

// countRequests counts the requests of user received in [from, to) in the
// audit log r: every verb but watch once, at its ResponseComplete event;
// watches once, at their ResponseStarted event (a watch's ResponseComplete
// comes when it ends, maybe never). Lines that are not JSON events fail the
// count; an event without a received time is skipped.
func countRequests(r io.Reader, user string, from, to time.Time) (requestCounts, error) {
	c := requestCounts{User: user, Seconds: to.Sub(from).Seconds(), ByKind: map[string]int{}}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for line := 1; s.Scan(); line++ {
		if len(s.Bytes()) == 0 {
			continue
		}
		var e auditEvent
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			return c, fmt.Errorf("audit log line %d: %w", line, err)
		}
		if e.User.Username != user || e.Received.IsZero() || e.Received.Before(from) || !e.Received.Before(to) {
			continue
		}
		switch {
		case e.Verb == "watch" && e.Stage == "ResponseStarted":
			c.Watches++
		case e.Verb != "watch" && e.Stage == "ResponseComplete":
			c.Requests++
		default:
			continue
		}
		c.ByKind[e.what()]++
	}
	if err := s.Err(); err != nil {
		return c, fmt.Errorf("reading the audit log: %w", err)
	}
	return c, nil
}

// countRequestsIn is countRequests over the audit log file path.
func countRequestsIn(path, user string, from, to time.Time) (requestCounts, error) {
	f, err := os.Open(path)
	if err != nil {
		return requestCounts{}, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	return countRequests(f, user, from, to)
}

// topKinds returns the n most frequent kinds of c as "kind: k/min", most
// frequent first (then by name).
func (c requestCounts) topKinds(n int) []string {
	kinds := make([]string, 0, len(c.ByKind))
	for k := range c.ByKind {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if c.ByKind[kinds[i]] != c.ByKind[kinds[j]] {
			return c.ByKind[kinds[i]] > c.ByKind[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	if len(kinds) > n {
		kinds = kinds[:n]
	}
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = fmt.Sprintf("%s %.1f", k, perMinute(c.ByKind[k], c.Seconds))
	}
	return out
}
