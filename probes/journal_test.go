package probes

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// journal collects notes, taken as "uid/container|what|eventType|reason|message|err".
type journal struct {
	mu    sync.Mutex
	notes []Note
}

func (j *journal) Note(n Note) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.notes = append(j.notes, n)
}

func (j *journal) take() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, n := range j.notes {
		out = append(out, fmt.Sprintf("%s/%s|%s|%s|%s|%s|%s", n.PodUID, n.Container, n.What, n.EventType, n.Reason, n.Message, n.Err))
	}
	j.notes = nil
	return out
}

// TestJournal: failed runs and changes of the published result are noted,
// with the output and the event they were also reported as; passing runs
// are not, however many.
func TestJournal(t *testing.T) {
	h := newHarness(t)
	j := &journal{}
	h.m.opts.Journal = j
	h.exec.plan("live", false, false, true)
	h.exec.plan("ready", true)
	live, ready := execProbeSpec("live"), execProbeSpec("ready")
	live.FailureThreshold = 2
	pod := testPod("p1", v1.Container{LivenessProbe: live, ReadinessProbe: ready})
	h.status.set(pod.UID, running("abc", t0, "c"))
	h.m.AddPod(pod)

	h.waitIter(pod, "c", Liveness)
	h.waitIter(pod, "c", Readiness)
	want := []string{
		"p1/c|liveness probe failed|Warning|Unhealthy|Liveness probe failed: stderr|",
		"p1/c|readiness probe Failure -> Success|||stderr|",
	}
	if got := j.take(); !sameNotes(got, want) {
		t.Fatalf("after the first probes:\n  %q\nwant\n  %q", got, want)
	}
	h.step(10*time.Second, pod, "c", Liveness, Readiness)
	want = []string{
		"p1/c|liveness probe failed|Warning|Unhealthy|Liveness probe failed: stderr|",
		"p1/c|liveness probe Success -> Failure|||stderr|",
	}
	if got := j.take(); !sameNotes(got, want) {
		t.Fatalf("after the second failure:\n  %q\nwant\n  %q", got, want)
	}
	// Liveness holds (the container will be replaced); readiness keeps
	// passing: nothing more to note.
	for range 5 {
		h.step(10*time.Second, pod, "c", Liveness, Readiness)
	}
	if got := j.take(); len(got) != 0 {
		t.Errorf("passing probes noted %q", got)
	}
}

// TestJournalErrored: a probe that cannot run is noted with its error.
func TestJournalErrored(t *testing.T) {
	h := newHarness(t)
	j := &journal{}
	h.m.opts.Journal = j
	h.exec.planErrors("ready", fmt.Errorf("runtime down"))
	pod := testPod("p1", v1.Container{ReadinessProbe: execProbeSpec("ready")})
	h.status.set(pod.UID, running("abc", t0, "c"))
	h.m.AddPod(pod)
	h.waitIter(pod, "c", Readiness)
	got := j.take()
	if len(got) != 1 || !strings.HasPrefix(got[0], "p1/c|readiness probe errored|Warning|Unhealthy|Readiness probe errored and resulted in unknown state:") ||
		!strings.HasSuffix(got[0], "exec probe in container abc: runtime down") {
		t.Errorf("notes %q, want one errored note with the error", got)
	}
}

// sameNotes compares notes whatever the order of the workers' goroutines.
func sameNotes(got, want []string) bool {
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}
