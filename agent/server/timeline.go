package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/nodekit-dev/nodekit/agent/timeline"
)

// TimelineProvider is a Provider that also keeps the pods' timelines
// (agent/timeline: timeline.Recorder implements it); the server then answers
// GET /debug/pods/{namespace}/{name}/timeline with the JSON of the pod's
// timeline.Timeline, on the main port (authorized as the kubelet's other
// /debug paths: subresource proxy) and the local socket, and 404 naming the
// pod when there is none.
type TimelineProvider interface {
	// PodTimeline returns the timeline of the pod namespace/name (its newest
	// instance), false when the agent has none.
	PodTimeline(namespace, name string) (*timeline.Timeline, bool)
}

func (s *Server) serveTimeline(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	tl, ok := s.o.Provider.(TimelineProvider).PodTimeline(ns, name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("pod %s/%s has no timeline on this node", ns, name))
		return
	}
	s.writeJSON(w, tl)
}

// GetTimeline asks the agent serving the local socket for the timeline of the
// pod namespace/name.
func GetTimeline(ctx context.Context, socket, namespace, name string) (*timeline.Timeline, error) {
	var tl timeline.Timeline
	path := "/debug/pods/" + url.PathEscape(namespace) + "/" + url.PathEscape(name) + "/timeline"
	if err := getLocal(ctx, socket, path, &tl); err != nil {
		return nil, fmt.Errorf("timeline of pod %s/%s from %s: %w", namespace, name, socket, err)
	}
	return &tl, nil
}
