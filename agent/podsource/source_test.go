package podsource

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func nextUpdate(t *testing.T, ch <-chan Update) Update {
	t.Helper()
	select {
	case u := <-ch:
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("no update")
	}
	return Update{}
}

func TestPodsSource(t *testing.T) {
	p, err := NewPods(PodsOptions{NodeName: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	var _ Source = p
	var _ Source = &ManifestDir{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	// The first update comes at once, empty: the source has synced.
	if u := nextUpdate(t, p.Updates()); len(u.Pods) != 0 {
		t.Fatalf("first update: %v", u.Pods)
	}

	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "uid-1", Labels: map[string]string{"app": "web"}},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "busybox"}}}}
	got, err := p.Add(pod)
	if err != nil {
		t.Fatal(err)
	}
	// Name and UID kept; defaults; not a static pod.
	if got.Name != "web" || got.Namespace != "default" || got.UID != "uid-1" || got.Spec.NodeName != "node1" ||
		got.Annotations[AnnotationSource] != SourceAPI || got.Spec.RestartPolicy != v1.RestartPolicyAlways ||
		got.Spec.Containers[0].ImagePullPolicy != v1.PullAlways || got.CreationTimestamp.IsZero() {
		t.Fatalf("added pod: %+v", got)
	}
	u := nextUpdate(t, p.Updates())
	if len(u.Pods) != 1 || u.Pods[0].UID != "uid-1" {
		t.Fatalf("update after Add: %v", u.Pods)
	}

	// Invalid pods are refused, naming the pod and the field.
	bad := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "Bad_Name"}, Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c"}}}}
	if _, err := p.Add(bad); err == nil || !strings.Contains(err.Error(), "pod default/Bad_Name") ||
		!strings.Contains(err.Error(), "metadata.name") || !strings.Contains(err.Error(), "spec.containers[0].image") {
		t.Errorf("invalid pod: %v", err)
	}
	// A second pod of the same name with another UID is refused; without a UID it
	// replaces the first.
	dup := pod.DeepCopy()
	dup.UID = "uid-2"
	if _, err := p.Add(dup); err == nil || !strings.Contains(err.Error(), "Duplicate value") {
		t.Errorf("duplicate name: %v", err)
	}
	again := pod.DeepCopy()
	again.UID = ""
	again.Labels["v"] = "2"
	if got2, err := p.Add(again); err != nil || got2.UID != "uid-1" || !got2.CreationTimestamp.Equal(&got.CreationTimestamp) {
		t.Errorf("replace by name: %v %v", got2, err)
	}
	// Made-up UIDs have the API server's form.
	other, err := p.Add(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ns"},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "busybox"}}}})
	if err != nil || len(other.UID) != 36 || strings.Count(string(other.UID), "-") != 4 {
		t.Errorf("made-up UID %q, %v", other.UID, err)
	}
	if !p.Remove("uid-1") || p.Remove("uid-1") {
		t.Error("Remove reports wrongly")
	}
	// Updates coalesce: the latest set is what arrives.
	var last Update
	deadline := time.Now().Add(30 * time.Second)
	for len(last.Pods) != 1 || last.Pods[0].Name != "other" {
		if time.Now().After(deadline) {
			t.Fatalf("latest update: %v", last.Pods)
		}
		last = nextUpdate(t, p.Updates())
	}
}
