package timeline_test

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodekit-dev/nodekit/agent/timeline"
)

// A pod's liveness probe fails: the probe failure, the sync's decision and
// the CRI call it made (recorded through the context, as an instrumented
// runtime does) end up in the pod's timeline, oldest first.
func Example() {
	clock := clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	rec := timeline.New(timeline.Options{Clock: clock})
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "1234"}}
	rec.Add(pod)

	rec.Record(pod.UID, timeline.Entry{Kind: timeline.Probe, Container: "app", What: "liveness probe failed",
		Reason: "Unhealthy", Message: "Liveness probe failed: HTTP probe failed with statuscode: 500", Event: timeline.Warning})
	clock.Step(2 * time.Second)
	rec.Record(pod.UID, timeline.Entry{Kind: timeline.Sync, Container: "app", What: "kill container", Reason: "liveness probe failed"})

	// Deep in the sync, a CRI client records into the pod the context names.
	ctx := timeline.WithContainer(timeline.WithPod(context.Background(), rec, pod.UID), "app")
	timeline.FromContext(ctx).Record(timeline.Entry{Kind: timeline.CRI, What: "StopContainer", Took: 1200 * time.Millisecond})

	tl, _ := rec.PodTimeline("default", "web")
	for _, e := range tl.Entries {
		fmt.Printf("%s %-5s %s: %s", e.Time.Format(time.TimeOnly), e.Kind, e.Container, e.What)
		if e.Reason != "" {
			fmt.Printf(" (%s)", e.Reason)
		}
		if e.Duration != "" {
			fmt.Printf(" in %s", e.Duration)
		}
		fmt.Println()
	}
	// Output:
	// 12:00:00 Probe app: liveness probe failed (Unhealthy)
	// 12:00:02 Sync  app: kill container (liveness probe failed)
	// 12:00:02 CRI   app: StopContainer in 1.2s
}
