package status

import (
	"fmt"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/nodekit-dev/nodekit/agent/timeline"
)

// TestManagerChanges: the change hook sees every new version with the one it
// replaces, and nothing for an update that changes nothing.
func TestManagerChanges(t *testing.T) {
	var got []string
	ready := func(s *v1.PodStatus) string {
		if c := condition(*s, v1.PodReady); c != nil {
			return string(c.Status)
		}
		return "-"
	}
	m, _ := newTestManager(t, nil, WithChanges(func(pod *v1.Pod, old, status *v1.PodStatus) {
		got = append(got, fmt.Sprintf("%s: %s/%s -> %s/%s", pod.Name, old.Phase, ready(old), status.Phase, ready(status)))
	}))
	pod := podNamed("p")
	st := runningStatus(pod)
	m.SetPodStatus(pod, st)
	m.SetPodStatus(pod, st) // no change
	m.SetContainerReadiness(pod.UID, "a1", false)
	m.SetContainerReadiness(pod.UID, "a1", false) // no change
	m.TerminatePod(pod)
	want := []string{
		"p: /- -> Running/True",
		"p: Running/True -> Running/False",
		"p: Running/False -> Failed/False",
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes\n  %q\nwant\n  %q", got, want)
	}
}

// TestManagerChangesToTimeline: the timeline's StatusChanged fits the hook.
func TestManagerChangesToTimeline(t *testing.T) {
	rec := timeline.New(timeline.Options{})
	m, _ := newTestManager(t, nil, WithChanges(rec.StatusChanged))
	pod := podNamed("p")
	rec.Add(pod)
	m.SetPodStatus(pod, runningStatus(pod))
	m.SetContainerReadiness(pod.UID, "a1", false)
	tl, _ := rec.Get(pod.UID)
	var whats []string
	for _, e := range tl.Entries {
		whats = append(whats, e.Container+": "+e.What)
	}
	want := []string{": phase Running", "a: state Running", ": condition Ready True -> False", ": condition ContainersReady True -> False", "a: ready true -> false"}
	if !slices.Equal(whats, want) {
		t.Errorf("timeline %q, want %q", whats, want)
	}
}
