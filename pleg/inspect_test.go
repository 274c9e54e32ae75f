package pleg

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

func ids[T interface{ GetId() string }](objs []T) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetId())
	}
	return out
}

// twoSandboxPod is a pod recreated once: sandbox sb1 (stopped) with container a1
// (exited), sandbox sb2 (ready, two IPs) with a2 (running) and b2 (created).
func twoSandboxPod(uid string) *testPod {
	sb2 := newSandbox(uid, "sb2", true, 10*time.Second, "10.0.0.2")
	sb2.Network.AdditionalIps = []*runtimeapi.PodIP{{Ip: "fd00::2"}}
	return &testPod{
		uid:       uid,
		sandboxes: []*critest.FakePodSandbox{newSandbox(uid, "sb1", false, 0, ""), sb2},
		ctrs: []*critest.FakeContainer{
			newContainer(uid, "sb1", "a1", "a", runtimeapi.ContainerState_CONTAINER_EXITED, time.Second),
			newContainer(uid, "sb2", "b2", "b", runtimeapi.ContainerState_CONTAINER_CREATED, 12*time.Second),
			newContainer(uid, "sb2", "a2", "a", runtimeapi.ContainerState_CONTAINER_RUNNING, 11*time.Second),
		},
	}
}

func TestInspect(t *testing.T) {
	f := newFakeRuntime()
	f.set(twoSandboxPod("p1"), simplePod("p2", runtimeapi.ContainerState_CONTAINER_RUNNING))
	before := time.Now()
	st, err := Inspect(context.Background(), f, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "p1" || st.Name != "name-p1" || st.Namespace != "ns" {
		t.Errorf("identity %q %q/%q", st.ID, st.Namespace, st.Name)
	}
	if got, want := ids(st.SandboxStatuses), []string{"sb2", "sb1"}; !slices.Equal(got, want) {
		t.Errorf("sandboxes %v, want newest first %v", got, want)
	}
	if got, want := ids(st.ContainerStatuses), []string{"b2", "a2", "a1"}; !slices.Equal(got, want) {
		t.Errorf("containers %v, want newest first %v (and none of p2)", got, want)
	}
	if want := []string{"10.0.0.2", "fd00::2"}; !slices.Equal(st.IPs, want) {
		t.Errorf("IPs %v, want %v", st.IPs, want)
	}
	if st.TimeStamp.Before(before) {
		t.Errorf("timestamp %v is before the call", st.TimeStamp)
	}
}

func TestInspectUnknownPod(t *testing.T) {
	f := newFakeRuntime()
	f.set(simplePod("p1", runtimeapi.ContainerState_CONTAINER_RUNNING))
	st, err := Inspect(context.Background(), f, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "nobody" || len(st.SandboxStatuses)+len(st.ContainerStatuses) != 0 {
		t.Fatalf("got %+v, want an empty status", st)
	}
}

// An object removed between the list and its status call is just gone.
func TestInspectRacingRemoval(t *testing.T) {
	f := newFakeRuntime()
	f.set(twoSandboxPod("p1"))
	f.gone["a1"], f.gone["sb1"] = true, true
	st, err := Inspect(context.Background(), f, "p1")
	if err != nil {
		t.Fatalf("NotFound from a racing removal is an error: %v", err)
	}
	if got := ids(st.ContainerStatuses); !slices.Equal(got, []string{"b2", "a2"}) {
		t.Errorf("containers %v, want the removed one left out", got)
	}
	if got := ids(st.SandboxStatuses); !slices.Equal(got, []string{"sb2"}) {
		t.Errorf("sandboxes %v, want the removed one left out", got)
	}
}

func TestInspectErrors(t *testing.T) {
	for _, call := range []string{"ListPodSandbox", "ListContainers", "PodSandboxStatus", "ContainerStatus"} {
		t.Run(call, func(t *testing.T) {
			f := newFakeRuntime()
			f.set(simplePod("p1", runtimeapi.ContainerState_CONTAINER_RUNNING))
			f.InjectError(call, status.Error(codes.Unavailable, "runtime down"))
			_, err := Inspect(context.Background(), f, "p1")
			if err == nil || status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "p1") {
				t.Fatalf("err = %v, want the Unavailable error wrapped with the pod", err)
			}
		})
	}
}

func TestSandboxIPs(t *testing.T) {
	ready := func(id string, created int64, ip string, more ...string) *runtimeapi.PodSandboxStatus {
		s := &runtimeapi.PodSandboxStatus{Id: id, CreatedAt: created, State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Network: &runtimeapi.PodSandboxNetworkStatus{Ip: ip}}
		for _, m := range more {
			s.Network.AdditionalIps = append(s.Network.AdditionalIps, &runtimeapi.PodIP{Ip: m})
		}
		return s
	}
	notReady := func(s *runtimeapi.PodSandboxStatus) *runtimeapi.PodSandboxStatus {
		s.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		return s
	}
	tests := []struct {
		name      string
		sandboxes []*runtimeapi.PodSandboxStatus // newest first
		want      []string
	}{
		{"none", nil, nil},
		{"ready", []*runtimeapi.PodSandboxStatus{ready("a", 1, "10.0.0.1")}, []string{"10.0.0.1"}},
		{"dual stack", []*runtimeapi.PodSandboxStatus{ready("a", 1, "10.0.0.1", "fd00::1")}, []string{"10.0.0.1", "fd00::1"}},
		{"not ready", []*runtimeapi.PodSandboxStatus{notReady(ready("a", 1, "10.0.0.1"))}, nil},
		{"host network", []*runtimeapi.PodSandboxStatus{{Id: "a", State: runtimeapi.PodSandboxState_SANDBOX_READY}}, nil},
		{"the ready one", []*runtimeapi.PodSandboxStatus{notReady(ready("b", 2, "10.0.0.2")), ready("a", 1, "10.0.0.1")}, []string{"10.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sandboxIPs(tt.sandboxes); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
