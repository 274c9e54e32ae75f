package main

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodekit-dev/nodekit/agent/podsource"
	"github.com/nodekit-dev/nodekit/agent/status"
)

var _ status.Sink = (*recorder)(nil)

func TestPodManifestParses(t *testing.T) {
	name := manifestName("idle", 7)
	pod, err := podsource.Parse(name+".yaml", []byte(podManifest(name, v1.RestartPolicyNever)), nodeName)
	if err != nil {
		t.Fatal(err)
	}
	if pod.Name != podName(name) || pod.Name != "idle-007-nkbench" {
		t.Errorf("pod name %q, want %q", pod.Name, podName(name))
	}
	if pod.Spec.RestartPolicy != v1.RestartPolicyNever || len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Image != busybox {
		t.Errorf("unexpected spec: %+v", pod.Spec)
	}
}

func runningStatus(id string) v1.PodStatus {
	return v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: []v1.ContainerStatus{{
		Name: "sleep", ContainerID: "nodekit://" + id, Ready: true,
		State: v1.ContainerState{Running: &v1.ContainerStateRunning{}},
	}}}
}

func terminatedStatus(id string) v1.PodStatus {
	return v1.PodStatus{Phase: v1.PodFailed, ContainerStatuses: []v1.ContainerStatus{{
		Name: "sleep", ContainerID: "nodekit://" + id,
		State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 137}},
	}}}
}

// put has r record status, failing the test on an error.
func put(t *testing.T, r *recorder, pod *v1.Pod, status v1.PodStatus, version uint64) {
	t.Helper()
	if err := r.Put(context.Background(), pod, status, version); err != nil {
		t.Fatal(err)
	}
}

func TestRecorder(t *testing.T) {
	r := newRecorder()
	pod := &v1.Pod{}
	pod.Name, pod.UID = "exit-e-000-nkbench", types.UID("u1")

	put(t, r, pod, runningStatus("c1"), 1)
	if got := r.running(); got[pod.Name].containerID != "c1" {
		t.Fatalf("running() = %+v, want the pod with container c1", got)
	}
	ch := r.terminatedCh("c1")
	select {
	case <-ch:
		t.Fatal("terminated before any Put showed it")
	default:
	}
	before := time.Now()
	put(t, r, pod, terminatedStatus("c1"), 2)
	select {
	case <-ch:
	default:
		t.Fatal("waiter not released by the Put showing the container terminated")
	}
	first, ok := r.terminatedAt("c1")
	if !ok || first.Before(before) {
		t.Fatalf("terminatedAt = %v, %v; want a time after %v", first, ok, before)
	}
	// Later Puts showing it terminated do not move the first time.
	put(t, r, pod, terminatedStatus("c1"), 3)
	if again, _ := r.terminatedAt("c1"); !again.Equal(first) {
		t.Errorf("terminatedAt moved from %v to %v", first, again)
	}
	if len(r.running()) != 0 {
		t.Errorf("a failed pod is listed as running")
	}
	if r.putCount() != 3 {
		t.Errorf("putCount = %d, want 3", r.putCount())
	}
	// A waiter registered after the fact is released at once.
	put(t, r, pod, terminatedStatus("c2"), 4)
	select {
	case <-r.terminatedCh("c2"):
	default:
		t.Error("waiter for an already terminated container blocks")
	}
}

func TestPodRunning(t *testing.T) {
	notReady := runningStatus("c")
	notReady.ContainerStatuses[0].Ready = false
	for _, tc := range []struct {
		name string
		s    v1.PodStatus
		want bool
	}{
		{"running and ready", runningStatus("c"), true},
		{"not ready", notReady, false},
		{"terminated", terminatedStatus("c"), false},
		{"pending without containers", v1.PodStatus{Phase: v1.PodPending}, false},
		{"running without containers", v1.PodStatus{Phase: v1.PodRunning}, false},
	} {
		if got := podRunning(&tc.s); got != tc.want {
			t.Errorf("%s: podRunning = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-parts", "idle", "-plegs", "generic,evented", "-pods", "10"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.parts["idle"] || o.parts["exits"] || len(o.plegs) != 2 || o.plegs[0] != "generic" || o.idle.pods != 10 {
		t.Errorf("parseFlags: %+v", o)
	}
	o, err = parseFlags([]string{"-parts", "volumes", "-volume-runs", "3", "-volume-updates", "4"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.parts["volumes"] || o.parts["exits"] || o.volumes.runs != 3 || o.volumes.updates != 4 {
		t.Errorf("parseFlags: %+v", o)
	}
	if o, _ := parseFlags(nil); !o.parts["volumes"] || !o.parts["exits"] {
		t.Errorf("default parts %v: want volumes among them", o.parts)
	}
	for _, bad := range [][]string{{"-parts", "nope"}, {"-plegs", "fast"}, {"-exits", "0"}, {"-volume-runs", "0"}, {"-volume-updates", "0"}, {"extra"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q): no error", bad)
		}
	}
}

func TestRecorderStarted(t *testing.T) {
	r := newRecorder()
	pod := &v1.Pod{}
	pod.Name, pod.UID = "vol-w-001-nkbench", types.UID("u1")
	ch := r.startedCh(pod.Name)
	pending := v1.PodStatus{Phase: v1.PodPending, ContainerStatuses: []v1.ContainerStatus{{
		Name: "main", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}
	put(t, r, pod, pending, 1)
	put(t, r, pod, v1.PodStatus{Phase: v1.PodPending}, 2) // no container statuses yet
	select {
	case <-ch:
		t.Fatal("started before any Put showed the container running")
	default:
	}
	if _, ok := r.startedAt(pod.Name); ok {
		t.Fatal("startedAt set before any Put showed the container running")
	}
	before := time.Now()
	notReady := runningStatus("c1")
	notReady.ContainerStatuses[0].Ready = false // running is enough
	put(t, r, pod, notReady, 3)
	select {
	case <-ch:
	default:
		t.Fatal("waiter not released by the Put showing the container running")
	}
	first, ok := r.startedAt(pod.Name)
	if !ok || first.Before(before) {
		t.Fatalf("startedAt = %v, %v; want a time after %v", first, ok, before)
	}
	put(t, r, pod, runningStatus("c1"), 4)
	if again, _ := r.startedAt(pod.Name); !again.Equal(first) {
		t.Errorf("startedAt moved from %v to %v", first, again)
	}
	select {
	case <-r.startedCh(pod.Name):
	default:
		t.Error("waiter for an already started pod blocks")
	}
}
