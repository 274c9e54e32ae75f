package agent

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/nodekit-dev/nodekit/agent/timeline"
	"github.com/nodekit-dev/nodekit/pleg"
	"github.com/nodekit-dev/nodekit/probes"
)

func timelinePod(uid string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: types.UID(uid),
		Annotations: map[string]string{"kubernetes.io/config.source": "file"}}}
}

// timelineLines are the pod's entries as "kind container: what (reason)
// message [error]".
func timelineLines(t *testing.T, rec *timeline.Recorder, uid types.UID) []string {
	t.Helper()
	tl, ok := rec.Get(uid)
	if !ok {
		t.Fatalf("no timeline for %s", uid)
	}
	var out []string
	for _, e := range tl.Entries {
		s := string(e.Kind) + " " + e.Container + ": " + e.What
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
		if e.Message != "" {
			s += " " + e.Message
		}
		if e.Error != "" {
			s += " [" + e.Error + "]"
		}
		out = append(out, s)
	}
	return out
}

// TestInstrumentedRuntimeRecordsCRICalls: calls made with a pod's context
// are in its timeline with their latency and error — those that change
// something always, reads only when they fail — and counted either way.
func TestInstrumentedRuntimeRecordsCRICalls(t *testing.T) {
	fake := critest.NewFakeRuntimeService()
	reg := prometheus.NewRegistry()
	rt := &instrumentedRuntime{RuntimeService: fake, m: newMetrics(reg)}
	rec := timeline.New(timeline.Options{})
	pod := timelinePod("u1")
	rec.Add(pod)

	ctx := timeline.WithPod(context.Background(), rec, pod.UID)
	id, err := rt.RunPodSandbox(ctx, &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Uid: "u1", Namespace: "default", Attempt: 2}}, "")
	if err != nil {
		t.Fatal(err)
	}
	cctx := timeline.WithContainer(ctx, "app")
	if _, err := rt.ListContainers(cctx, nil); err != nil { // a read that works: not recorded
		t.Fatal(err)
	}
	fake.InjectError("StopContainer", errors.New("container is stuck"))
	if err := rt.StopContainer(cctx, "0123456789abcdef0123", 30); err == nil {
		t.Fatal("StopContainer: want the injected error")
	}
	if _, err := rt.ContainerStatus(cctx, "gone", false); err == nil { // a read that fails
		t.Fatal("ContainerStatus of an unknown container: want an error")
	}
	if err := rt.StopPodSandbox(context.Background(), id); err != nil { // no pod in the context
		t.Fatal(err)
	}

	got := timelineLines(t, rec, pod.UID)
	want := []string{
		"CRI : RunPodSandbox attempt 2, sandbox " + shortID(id),
		"CRI app: StopContainer container 0123456789abc, timeout 30s [container is stuck]",
	}
	if len(got) != 3 || !slices.Equal(got[:2], want) || got[2][:len("CRI app: ContainerStatus container gone [")] != "CRI app: ContainerStatus container gone [" {
		t.Errorf("timeline\n  %q\nwant\n  %q and the failed ContainerStatus", got, want)
	}
	tl, _ := rec.Get(pod.UID)
	for _, e := range tl.Entries {
		if e.Took <= 0 || e.Duration == "" {
			t.Errorf("%s: no latency", e.What)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "kubelet_runtime_operations_total" && len(mf.GetMetric()) < 5 {
			t.Errorf("operations counted for %d kinds of calls, want the 5 made", len(mf.GetMetric()))
		}
	}
}

func TestRecordSourceChange(t *testing.T) {
	rec := timeline.New(timeline.Options{})
	pod := timelinePod("u1")
	recordSourceChange(rec, nil, pod)
	recordSourceChange(rec, pod, pod) // the same pod: nothing
	same := pod.DeepCopy()
	recordSourceChange(rec, pod, same) // an equal copy: nothing
	labelled := pod.DeepCopy()
	labelled.Labels = map[string]string{"app": "web"}
	recordSourceChange(rec, same, labelled)
	api := labelled.DeepCopy()
	api.Annotations["kubernetes.io/config.source"] = "api"
	api.ResourceVersion = "7"
	deleted := api.DeepCopy()
	deleted.ResourceVersion = "8"
	deleted.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	grace := int64(30)
	deleted.DeletionGracePeriodSeconds = &grace
	recordSourceChange(rec, api, deleted)
	recordSourceRemoved(rec, deleted)
	want := []string{
		"Source : added source file",
		"Source : updated source file",
		"Source : deleted source api, grace period 30s",
		"Source : removed source api",
	}
	if got := timelineLines(t, rec, pod.UID); !slices.Equal(got, want) {
		t.Errorf("timeline\n  %q\nwant\n  %q", got, want)
	}
}

func TestRecordPLEG(t *testing.T) {
	rec := timeline.New(timeline.Options{})
	pod := timelinePod("u1")
	rec.Add(pod)
	rs := &pleg.PodStatus{ID: pod.UID, ContainerStatuses: []*runtimeapi.ContainerStatus{{
		Id: "c1", Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, State: runtimeapi.ContainerState_CONTAINER_EXITED,
		ExitCode: 137, Reason: "OOMKilled",
	}}}
	recordPLEG(rec, &pleg.Event{ID: pod.UID, Type: pleg.ContainerStarted, Data: "c0"}, rs)
	recordPLEG(rec, &pleg.Event{ID: pod.UID, Type: pleg.ContainerDied, Data: "c1"}, rs)
	recordPLEG(rec, &pleg.Event{ID: pod.UID, Type: pleg.PodSync, Data: "sb1"}, nil)
	want := []string{
		"PLEG : ContainerStarted container c0",
		"PLEG app: ContainerDied (OOMKilled) container c1: exit code 137",
		"PLEG : PodSync sandbox sb1",
	}
	if got := timelineLines(t, rec, pod.UID); !slices.Equal(got, want) {
		t.Errorf("timeline\n  %q\nwant\n  %q", got, want)
	}
}

func TestTimelineJournal(t *testing.T) {
	rec := timeline.New(timeline.Options{})
	pod := timelinePod("u1")
	rec.Add(pod)
	var j probes.Journal = timelineJournal{rec}
	j.Note(probes.Note{PodUID: pod.UID, Container: "app", Type: probes.Liveness, What: "liveness probe failed",
		Message: "Liveness probe failed: 500", Took: time.Second, EventType: "Warning", Reason: "Unhealthy"})
	tl, _ := rec.Get(pod.UID)
	if len(tl.Entries) != 1 {
		t.Fatalf("entries %+v", tl.Entries)
	}
	if e := tl.Entries[0]; e.Kind != timeline.Probe || e.Container != "app" || e.Event != "Warning" || e.Reason != "Unhealthy" ||
		e.Duration != "1s" || e.Message != "Liveness probe failed: 500" {
		t.Errorf("entry %+v", e)
	}
}
