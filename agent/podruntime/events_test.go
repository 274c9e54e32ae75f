package podruntime

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// eventLog records events as "Type Reason fieldPath: message".
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) Eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	ref, ok := obj.(*v1.ObjectReference)
	if !ok {
		panic(fmt.Sprintf("event object %T, want *v1.ObjectReference", obj))
	}
	if ref.Kind != "Pod" || ref.APIVersion != "v1" || ref.UID == "" || ref.Name == "" || ref.Namespace == "" {
		panic(fmt.Sprintf("event reference %+v does not name a pod", ref))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf("%s %s %s: %s", eventtype, reason, ref.FieldPath, fmt.Sprintf(format, args...)))
}

// take returns the events so far and forgets them.
func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

// TestEvents follows a pod through what the kubelet reports as events: an
// image pulled, the container created and started, a liveness kill and the
// restart, a crash into back-off, a failed pull into its back-off.
func TestEvents(t *testing.T) {
	rec := &eventLog{}
	e := newEnv(t, func(o *Options) { o.Recorder = rec })
	pod := newPod("p", "app")
	pod.Spec.Containers[0].Image = "busybox:1.36"
	pod.Spec.Containers[0].ImagePullPolicy = v1.PullIfNotPresent
	pod.Spec.Containers[0].LivenessProbe = &v1.Probe{}

	want := func(what string, events ...string) {
		t.Helper()
		got := rec.take()
		if !slices.Equal(got, events) {
			t.Fatalf("%s: events\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(events, "\n  "))
		}
	}
	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	const c = "spec.containers{app}"
	want("fresh pod",
		`Normal Pulling `+c+`: Pulling image "busybox:1.36"`,
		`Normal Pulled `+c+`: Successfully pulled image "busybox:1.36" in 0s (0s including waiting). Image size: 0 bytes.`,
		"Normal Created "+c+": Container created",
		"Normal Started "+c+": Container started")

	// The image is there now: a restart says so.
	id := e.rt.containerIDs("app")[0]
	e.setProbe(LivenessProbe, id, ProbeFailure)
	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	want("liveness failure",
		"Normal Killing "+c+": Container app failed liveness probe, will be restarted",
		`Normal Pulled `+c+`: Container image "busybox:1.36" already present on machine and can be accessed by the pod`,
		"Normal Created "+c+": Container created",
		"Normal Started "+c+": Container started")

	// Two crashes: the first restarts at once, the second waits.
	ids := e.rt.containerIDs("app")
	e.rt.exit(t, ids[len(ids)-1], 1, e.clock.Now())
	e.sync(pod)
	rec.take()
	ids = e.rt.containerIDs("app")
	e.rt.exit(t, ids[len(ids)-1], 1, e.clock.Now())
	if res := e.sync(pod); !errors.Is(res.Err, ErrCrashLoopBackOff) {
		t.Fatalf("second crash: %v, want CrashLoopBackOff", res.Err)
	}
	want("crash loop", fmt.Sprintf("Warning BackOff %s: Back-off restarting failed container app in pod p_default(%s)", c, pod.UID))

	// A pull that fails, then its back-off.
	other := newPod("q", "app")
	other.Spec.Containers[0].Image = "registry.invalid/app:1"
	e.img.InjectError("PullImage", errors.New("connection refused"))
	e.sync(other)
	e.sync(other)
	want("failed pull",
		`Normal Pulling `+c+`: Pulling image "registry.invalid/app:1"`,
		`Warning Failed `+c+`: Failed to pull image "registry.invalid/app:1": connection refused`,
		`Normal BackOff `+c+`: Back-off pulling image "registry.invalid/app:1"`)
}
