package probes

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) Eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	ref := obj.(*v1.ObjectReference)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf("%s %s %s/%s %s: %s", eventtype, reason, ref.Namespace, ref.Name, ref.FieldPath, fmt.Sprintf(format, args...)))
}

// TestProbeEvents: a failing run reports Unhealthy with the probe's output, a
// redirect to another host a ProbeWarning, a passing run nothing — for a
// container and for a sidecar (an init container).
func TestProbeEvents(t *testing.T) {
	code := http.StatusInternalServerError
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
			return
		}
		w.WriteHeader(code)
		fmt.Fprint(w, "not yet")
	}))
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.URL)

	rec := &eventLog{}
	m := newTestManager(t, nil)
	m.opts.Recorder = rec
	always := v1.ContainerRestartPolicyAlways
	pod := &v1.Pod{}
	pod.Namespace, pod.Name, pod.UID = "default", "web", "u1"
	pod.Spec.Containers = []v1.Container{{Name: "app"}}
	pod.Spec.InitContainers = []v1.Container{{Name: "proxy", RestartPolicy: &always}}
	run := func(c *v1.Container, typ ProbeType, path string) {
		t.Helper()
		p := withDefaults(&v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Host: host, Port: intstr.FromInt32(int32(port)), Path: path}}})
		if _, _, err := m.runProbe(context.Background(), probeTarget{probe: p, pod: pod, probeType: typ, container: c, containerID: "abc"}); err != nil {
			t.Fatal(err)
		}
	}
	run(&pod.Spec.Containers[0], Liveness, "/")
	run(&pod.Spec.InitContainers[0], Readiness, "/")
	run(&pod.Spec.Containers[0], Readiness, "/away")
	code = http.StatusOK
	run(&pod.Spec.Containers[0], Liveness, "/")
	want := []string{
		"Warning Unhealthy default/web spec.containers{app}: Liveness probe failed: HTTP probe failed with statuscode: 500",
		"Warning Unhealthy default/web spec.initContainers{proxy}: Readiness probe failed: HTTP probe failed with statuscode: 500",
		"Warning ProbeWarning default/web spec.containers{app}: Readiness probe warning: Probe terminated redirects, Response body: <a href=\"http://elsewhere.invalid/\">Found</a>.\n\n",
	}
	if !slices.Equal(rec.events, want) {
		t.Errorf("events\n  %q\nwant\n  %q", rec.events, want)
	}
}
