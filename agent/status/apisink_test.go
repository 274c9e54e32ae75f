package status

import (
	"context"
	"log/slog"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func TestAPISink(t *testing.T) {
	ctx := context.Background()
	api := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"},
		Status: v1.PodStatus{Phase: v1.PodPending, Conditions: []v1.PodCondition{
			{Type: v1.PodScheduled, Status: v1.ConditionTrue},
			{Type: "example.com/Gate", Status: v1.ConditionTrue}}}}
	client := fake.NewClientset(api)
	s, err := NewAPISink(APISinkOptions{Client: client, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	running := v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.88.0.5",
		Conditions:        []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}, {Type: v1.PodScheduled, Status: v1.ConditionTrue}},
		ContainerStatuses: []v1.ContainerStatus{{Name: "web", Ready: true, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}}}
	if err := s.Put(ctx, api, running, 1); err != nil {
		t.Fatal(err)
	}
	got, _ := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
	if got.Status.Phase != v1.PodRunning || got.Status.PodIP != "10.88.0.5" || len(got.Status.ContainerStatuses) != 1 {
		t.Errorf("status %+v", got.Status)
	}
	kept := false
	for _, c := range got.Status.Conditions {
		kept = kept || c.Type == "example.com/Gate"
	}
	if !kept {
		t.Errorf("a condition the agent does not set was dropped: %v", got.Status.Conditions)
	}
	// The same status again: nothing to patch.
	before := len(client.Actions())
	if err := s.Put(ctx, api, running, 2); err != nil {
		t.Fatal(err)
	}
	for _, a := range client.Actions()[before:] {
		if a.GetVerb() == "patch" {
			t.Error("an unchanged status was patched")
		}
	}
	// Terminal, then an attempt to go back: refused.
	done := running.DeepCopy()
	done.Phase = v1.PodSucceeded
	if err := s.Put(ctx, api, *done, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, api, running, 4); err != nil {
		t.Fatal(err)
	}
	got, _ = client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
	if got.Status.Phase != v1.PodSucceeded {
		t.Errorf("phase %s, want Succeeded kept", got.Status.Phase)
	}
	// A pod that is not the API's, or another pod of that name: nothing written.
	other := api.DeepCopy()
	other.UID = "u2"
	if err := s.Put(ctx, other, running, 5); err != nil {
		t.Fatal(err)
	}
	s.o.Target = func(*v1.Pod) (types.UID, bool, error) { return "", false, nil }
	before = len(client.Actions())
	if err := s.Put(ctx, api, running, 6); err != nil || len(client.Actions()) != before {
		t.Errorf("a pod the sink does not own: %v, %d calls", err, len(client.Actions())-before)
	}
}
