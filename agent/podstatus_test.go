package agent

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	kubetypes "k8s.io/kubelet/pkg/types"
	"k8s.io/utils/clock"

	"github.com/nodekit-dev/nodekit/pleg"
)

// TestPodRuntimeStatusAfterAChange: after a sync that changed the pod, a
// refresh of the whole cache is no proof that the pod's entry holds the
// change (the evented PLEG marks the cache current while events are still in
// the stream): the worker inspects the runtime, and the container it started
// is there. Trusting the refresh once started a container twice.
func TestPodRuntimeStatusAfterAChange(t *testing.T) {
	ctx := context.Background()
	const uid = types.UID("pod-uid")
	labels := map[string]string{kubetypes.KubernetesPodUIDLabel: string(uid), kubetypes.KubernetesPodNameLabel: "p",
		kubetypes.KubernetesPodNamespaceLabel: "default"}
	rt := critest.NewFakeRuntimeService()
	sbCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "default", Uid: string(uid)}, Labels: labels}
	a := &Agent{cache: pleg.NewCache(), metrics: newMetrics(prometheus.NewRegistry()), rt: rt, clock: clock.RealClock{}}
	a.cache.UpdateTime(time.Now()) // the PLEG ran once: the pod had nothing

	st, err := a.podRuntimeStatus(ctx, uid, time.Time{})
	if err != nil || len(st.SandboxStatuses)+len(st.ContainerStatuses) != 0 {
		t.Fatalf("before any change: %+v, %v; want the cache's empty status", st, err)
	}
	// A sync creates the sandbox and starts a container...
	sb, err := rt.RunPodSandbox(ctx, sbCfg, "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := rt.CreateContainer(ctx, sb, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}, Labels: labels}, sbCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	// ...and the PLEG marks the cache current before the events arrive.
	a.cache.UpdateTime(changed.Add(time.Millisecond))
	st, err = a.podRuntimeStatus(ctx, uid, changed)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.ContainerStatuses) != 1 || st.ContainerStatuses[0].GetId() != id || len(st.SandboxStatuses) != 1 {
		t.Fatalf("after the change: sandboxes %d, containers %v; want the started container %s", len(st.SandboxStatuses), st.ContainerStatuses, id)
	}
	// What the worker read is cached: the next read after the same change
	// needs no inspection.
	before := len(rt.GetCalls())
	if st, err = a.podRuntimeStatus(ctx, uid, changed); err != nil || len(st.ContainerStatuses) != 1 {
		t.Fatalf("second read: %+v, %v", st, err)
	}
	if calls := rt.GetCalls()[before:]; len(calls) != 0 {
		t.Errorf("the second read called the runtime: %v", calls)
	}
}
