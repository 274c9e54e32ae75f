package cri_test

import (
	"context"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// GetContainerEvents delivers the lifecycle of a pod and a container, with statuses,
// and an exit arrives without polling.
func TestContainerEvents(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	stream, err := h.rt.GetContainerEvents(c, &runtime.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil { // the subscription is live
		t.Fatal(err)
	}
	events := make(chan *runtime.ContainerEventResponse, 100)
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()
	next := func(wantID string, want runtime.ContainerEventType) *runtime.ContainerEventResponse {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			if ev.ContainerId != wantID || ev.ContainerEventType != want {
				t.Fatalf("event %v for %.12s, want %v for %.12s", ev.ContainerEventType, ev.ContainerId, want, wantID)
			}
			return ev
		case <-time.After(20 * time.Second):
			t.Fatalf("no %v event for %.12s", want, wantID)
		}
		return nil
	}
	pod, podCfg := h.runPod("events")
	next(pod, runtime.ContainerEventType_CONTAINER_CREATED_EVENT)
	ev := next(pod, runtime.ContainerEventType_CONTAINER_STARTED_EVENT)
	if ev.PodSandboxStatus.GetState() != runtime.PodSandboxState_SANDBOX_READY {
		t.Fatalf("sandbox event carries state %v", ev.PodSandboxStatus.GetState())
	}

	ctl := t.TempDir()
	cfg := containerConfig("ev", busybox, "sh", "-c", "while [ ! -e /ctl/go ]; do sleep 0.01; done; exit 5")
	cfg.Mounts = []*runtime.Mount{{ContainerPath: "/ctl", HostPath: ctl}}
	id := h.createContainer(pod, podCfg, cfg)
	next(id, runtime.ContainerEventType_CONTAINER_CREATED_EVENT)
	h.startContainer(id)
	ev = next(id, runtime.ContainerEventType_CONTAINER_STARTED_EVENT)
	if len(ev.ContainersStatuses) != 1 || ev.ContainersStatuses[0].State != runtime.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("started event statuses: %v", ev.ContainersStatuses)
	}
	touch(t, ctl+"/go")
	ev = next(id, runtime.ContainerEventType_CONTAINER_STOPPED_EVENT)
	st := ev.ContainersStatuses[0]
	if st.State != runtime.ContainerState_CONTAINER_EXITED || st.ExitCode != 5 {
		t.Fatalf("stopped event status: %v code %d", st.State, st.ExitCode)
	}
	if _, err := h.rt.RemoveContainer(c, &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	ev = next(id, runtime.ContainerEventType_CONTAINER_DELETED_EVENT)
	if len(ev.ContainersStatuses) != 0 {
		t.Fatalf("deleted event still lists %d containers", len(ev.ContainersStatuses))
	}
	if _, err := h.rt.StopPodSandbox(c, &runtime.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	next(pod, runtime.ContainerEventType_CONTAINER_STOPPED_EVENT)
	if _, err := h.rt.RemovePodSandbox(c, &runtime.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	// The kubelet's evented PLEG needs the sandbox's status in the event of its
	// removal too ("received ContainerEventResponse with nil PodSandboxStatus").
	ev = next(pod, runtime.ContainerEventType_CONTAINER_DELETED_EVENT)
	if ev.PodSandboxStatus.GetId() != pod || ev.PodSandboxStatus.GetState() != runtime.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("sandbox deleted event carries sandbox status %v, want %.12s NOTREADY", ev.PodSandboxStatus, pod)
	}
}
