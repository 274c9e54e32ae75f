package podruntime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/nodekit-dev/nodekit/agent/timeline"
	"github.com/nodekit-dev/nodekit/probes"
)

// newTimelineEnv is newEnv with a timeline (on the env's clock) that knows
// pod, and an event recorder.
func newTimelineEnv(t *testing.T, pod *v1.Pod, mutate ...func(*Options)) (*env, *timeline.Recorder, *eventLog) {
	t.Helper()
	var rec *timeline.Recorder
	events := &eventLog{}
	e := newEnv(t, append([]func(*Options){func(o *Options) {
		rec = timeline.New(timeline.Options{Clock: o.Clock})
		o.Timeline, o.Recorder = rec, events
	}}, mutate...)...)
	rec.Add(pod)
	return e, rec, events
}

func entries(t *testing.T, rec *timeline.Recorder, uid types.UID) []timeline.Entry {
	t.Helper()
	tl, ok := rec.Get(uid)
	if !ok {
		t.Fatalf("no timeline for %s", uid)
	}
	return tl.Entries
}

// line is an entry as tests compare it: "Kind container: what (reason)".
func line(e timeline.Entry) string {
	s := string(e.Kind) + " " + e.Container + ": " + e.What
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

// inOrder checks that want appear among the entries in this order (other
// entries may come between) and returns the matching entries.
func inOrder(t *testing.T, es []timeline.Entry, want ...string) []timeline.Entry {
	t.Helper()
	var found []timeline.Entry
	i := 0
	for _, e := range es {
		if i < len(want) && line(e) == want[i] {
			found = append(found, e)
			i++
		}
	}
	if i < len(want) {
		var all []string
		for _, e := range es {
			all = append(all, e.Time.Format("15:04:05.000")+" "+line(e))
		}
		t.Fatalf("timeline lacks %q after %q; it has:\n  %s", want[i], want[:i], strings.Join(all, "\n  "))
	}
	return found
}

// podStatuses gives the probes the API status of the pods of a fake runtime:
// the newest instance of each container.
type podStatuses struct{ rt *fakeRuntime }

func (s podStatuses) GetPodStatus(uid types.UID) (v1.PodStatus, bool) {
	rs := inspect(s.rt, uid)
	st := v1.PodStatus{Phase: v1.PodRunning, PodIP: "127.0.0.1"}
	seen := map[string]bool{}
	for _, c := range rs.ContainerStatuses {
		name := containerName(c)
		if seen[name] {
			continue
		}
		seen[name] = true
		cs := v1.ContainerStatus{Name: name, ContainerID: "fake://" + c.GetId()}
		if c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			// The fake's start times are the wall clock's: long after
			// the test's clock. Long before is as good.
			cs.State.Running = &v1.ContainerStateRunning{}
		} else {
			cs.State.Terminated = &v1.ContainerStateTerminated{ExitCode: c.GetExitCode()}
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	return st, true
}

// failOnce is an exec runner whose first command exits 1 saying why; the
// later ones pass.
type failOnce struct {
	mu    sync.Mutex
	calls int
}

func (f *failOnce) ExecSync(context.Context, string, []string, time.Duration) ([]byte, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls == 1 {
		return []byte("disk full"), nil, utilexec.CodeExitError{Err: errors.New("exit status 1"), Code: 1}
	}
	return nil, nil, nil
}

// journal puts the probes' notes in the timeline, as the agent does, and
// tells the test.
type journal struct {
	rec   *timeline.Recorder
	notes chan probes.Note
}

func (j journal) Note(n probes.Note) {
	j.rec.Record(n.PodUID, timeline.Entry{Kind: timeline.Probe, Container: n.Container, What: n.What, Reason: n.Reason,
		Message: n.Message, Error: n.Err, Took: n.Took, Event: n.EventType})
	j.notes <- n
}

// TestTimelineLivenessFailure: the timeline of a pod whose liveness probe
// fails shows the probe failure, the kill decision with its reason, the
// restart, and — once the restarted container crashes twice — the back-off,
// in order, with the times they happened.
func TestTimelineLivenessFailure(t *testing.T) {
	pod := newPod("p", "app")
	pod.Spec.Containers[0].LivenessProbe = &v1.Probe{
		ProbeHandler:     v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"check"}}},
		PeriodSeconds:    10,
		FailureThreshold: 1,
	}
	var pm probes.Manager
	e, rec, _ := newTimelineEnv(t, pod, func(o *Options) {
		o.Probes = func(k ProbeKind, id string) ProbeResult {
			t := probes.Liveness
			if k == StartupProbe {
				t = probes.Startup
			}
			r, _ := pm.Get(t, id)
			return ProbeResult(r)
		}
	})
	t0 := e.clock.Now()
	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}

	notes := make(chan probes.Note, 10)
	pm, err := probes.New(probes.Options{
		Exec: &failOnce{}, Status: podStatuses{e.rt}, Clock: e.clock,
		Logger: slog.New(slog.DiscardHandler), Journal: journal{rec, notes},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Stop()
	e.clock.Step(20 * time.Second) // a period after the manager's start: no jitter
	pm.AddPod(pod)
	for range 2 { // the failed run, the result turned Failure
		select {
		case <-notes:
		case <-time.After(10 * time.Second):
			t.Fatal("the liveness probe did not fail")
		}
	}

	e.clock.Step(5 * time.Second)
	if res := e.sync(pod); res.Err != nil { // kill and restart
		t.Fatal(res.Err)
	}
	pm.Stop() // the restarted container's probes pass: nothing more from them

	crash := func() {
		ids := e.rt.containerIDs("app")
		e.rt.exit(t, ids[len(ids)-1], 1, e.clock.Now())
	}
	e.clock.Step(5 * time.Second)
	crash()
	if res := e.sync(pod); res.Err != nil { // the first crash restarts at once
		t.Fatal(res.Err)
	}
	e.clock.Step(5 * time.Second)
	crash()
	if res := e.sync(pod); !errors.Is(res.Err, ErrCrashLoopBackOff) {
		t.Fatalf("second crash: %v, want CrashLoopBackOff", res.Err)
	}

	es := entries(t, rec, pod.UID)
	found := inOrder(t, es,
		"Sync : create sandbox (no sandbox yet)",
		"Sync app: start container (first start)",
		"Probe app: liveness probe failed (Unhealthy)",
		"Probe app: liveness probe Success -> Failure",
		"Sync app: kill container (liveness probe failed)",
		"Sync app: killing container (grace period 30s) (Killing)",
		"Sync app: restart container (killed: liveness probe failed, restartPolicy Always)",
		"Sync app: container started (Started)",
		"Sync app: restart container (exited (exit code 1), restartPolicy Always)",
		"Sync app: container started (Started)",
		"BackOff app: back-off restarting container (exit code 1, 10s left) (BackOff)",
	)
	wantAt := []time.Duration{0, 0, 20, 20, 25, 25, 25, 25, 30, 30, 35}
	for i, f := range found {
		if want := t0.Add(wantAt[i] * time.Second); !f.Time.Equal(want) {
			t.Errorf("%q at %s, want %s", line(f), f.Time.Sub(t0), want.Sub(t0))
		}
	}
	if f := found[2]; f.Event != timeline.Warning || f.Message != "Liveness probe failed: disk full" {
		t.Errorf("probe failure %+v: want a Warning with the probe's output", f)
	}
	if f := found[5]; f.Event != timeline.Normal || f.Message != "Container app failed liveness probe, will be restarted" {
		t.Errorf("killing %+v: want the Killing event", f)
	}
	if f := found[10]; f.Event != timeline.Warning || f.Duration != "10s" {
		t.Errorf("back-off %+v: want a Warning with the delay as its duration", f)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Time.Before(es[i-1].Time) {
			t.Errorf("entry %d (%s) is older than entry %d", i, line(es[i]), i-1)
		}
	}
}

// TestTimelineEventsAreUserFacingEntries: every event the manager reports is
// an entry with the same type, reason and message, in the same order.
func TestTimelineEventsAreUserFacingEntries(t *testing.T) {
	pod := newPod("p", "app")
	pod.Spec.Containers[0].Image = "busybox:1.36"
	e, rec, events := newTimelineEnv(t, pod)
	e.sync(pod)
	e.setProbe(LivenessProbe, e.rt.containerIDs("app")[0], ProbeFailure)
	e.sync(pod)
	var got []string
	for _, en := range entries(t, rec, pod.UID) {
		if en.Event != "" {
			path := ""
			if en.Container != "" {
				path = "spec.containers{" + en.Container + "}"
			}
			got = append(got, fmt.Sprintf("%s %s %s: %s", en.Event, en.Reason, path, en.Message))
		}
	}
	want := events.take()
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(want) < 6 {
		t.Errorf("user-facing entries\n  %s\nevents\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestTimelineSandboxAndSpecChanges(t *testing.T) {
	pod := newPod("p", "app")
	e, rec, _ := newTimelineEnv(t, pod)
	e.sync(pod)
	// The sandbox dies with its container.
	e.rt.Lock()
	for _, s := range e.rt.Sandboxes {
		s.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	}
	e.rt.Unlock()
	e.rt.exit(t, e.rt.containerIDs("app")[0], 137, e.clock.Now())
	e.sync(pod)
	// The container's spec changes.
	pod.Spec.Containers[0].Image = "busybox:1.37" // the image is in the hash
	e.sync(pod)
	found := inOrder(t, entries(t, rec, pod.UID),
		"Sync : create sandbox (no sandbox yet)",
		"Sync : create sandbox (sandbox not ready)",
		"Sync : sandbox changed (SandboxChanged)",
		"Sync app: restart container (new sandbox (attempt 1))",
		"Sync app: kill container (spec changed)",
		"Sync app: restart container (killed: spec changed, restartPolicy Always)",
	)
	if found[1].Message != "attempt 1" {
		t.Errorf("new sandbox %+v: want its attempt", found[1])
	}
	for _, e := range entries(t, rec, pod.UID) {
		if e.What == "kill pod" {
			t.Errorf("%q recorded: nothing of the pod ran", line(e))
		}
	}
}

func TestTimelineImagesAndHooks(t *testing.T) {
	pod := newPod("p", "app")
	pod.Spec.Containers[0].Image = "registry.invalid/app:1"
	pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{
		PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"greet"}}},
		PreStop:   &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"drain"}}},
	}
	e, rec, _ := newTimelineEnv(t, pod)
	e.img.InjectError("PullImage", errors.New("connection refused"))
	e.sync(pod)
	e.sync(pod)
	e.clock.Step(10 * time.Second)
	e.rt.mu.Lock()
	e.rt.execOut = []byte("hello")
	e.rt.mu.Unlock()
	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	if err := e.m.KillPod(context.Background(), pod, inspect(e.rt, pod.UID), nil); err != nil {
		t.Fatal(err)
	}
	found := inOrder(t, entries(t, rec, pod.UID),
		"Image app: pull image registry.invalid/app:1 (Pulling)",
		"Image app: pull image failed registry.invalid/app:1 (Failed)",
		"BackOff app: back-off pulling image registry.invalid/app:1 (10s left) (BackOff)",
		"Image app: pull image registry.invalid/app:1 (Pulling)",
		"Image app: pulled image registry.invalid/app:1 (0 bytes) (Pulled)",
		"Hook app: postStart hook succeeded",
		"Sync : stop pod",
		"Sync app: killing container (grace period 30s) (Killing)",
		"Hook app: preStop hook succeeded",
	)
	if f := found[1]; f.Error != "connection refused" || f.Event != timeline.Warning {
		t.Errorf("failed pull %+v: want the error, user-facing", f)
	}
	if f := found[5]; f.Message != "hello" {
		t.Errorf("postStart hook %+v: want its output", f)
	}
}

func TestTimelinePostStartFailure(t *testing.T) {
	pod := newPod("p", "app")
	pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"false"}}}}
	e, rec, _ := newTimelineEnv(t, pod)
	e.rt.InjectError("ExecSync", errors.New("command 'false' exited with 1"))
	e.sync(pod)
	found := inOrder(t, entries(t, rec, pod.UID),
		"Hook app: postStart hook failed (FailedPostStartHook)",
		"Sync app: killing container (grace period 30s) (Killing)",
	)
	if f := found[0]; f.Event != timeline.Warning || f.Message != "PostStartHook failed" || !strings.Contains(f.Error, "exited with 1") {
		t.Errorf("hook failure %+v: want the event and the hook's error", f)
	}
}
