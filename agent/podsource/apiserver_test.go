package podsource

import (
	"context"
	"log/slog"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func apiPod(ns, name, uid string, mirror bool) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)},
		Spec: v1.PodSpec{NodeName: "n1", Containers: []v1.Container{{Name: "c", Image: "busybox"}}}}
	if mirror {
		p.Annotations = map[string]string{AnnotationMirror: "hash"}
	}
	return p
}

func next(t *testing.T, src *API) Update {
	t.Helper()
	select {
	case u := <-src.Updates():
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("no update from the API source")
		return Update{}
	}
}

func nsNames(u Update) []string {
	var out []string
	for _, p := range u.Pods {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

// TestAPISource: the first set once synced, then a set after every change;
// mirror pods are not run; pods are marked as coming from the API and can be
// looked up by UID.
func TestAPISource(t *testing.T) {
	client := fake.NewClientset(apiPod("default", "web", "u1", false), apiPod("kube-system", "static-n1", "u2", true))
	src, err := NewAPI(APIOptions{Client: client, NodeName: "n1", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	u := next(t, src)
	if got := nsNames(u); len(got) != 1 || got[0] != "default/web" {
		t.Fatalf("first set %v, want default/web only (no mirror pod)", got)
	}
	if u.Pods[0].Annotations[AnnotationSource] != SourceAPI {
		t.Errorf("annotations %v", u.Pods[0].Annotations)
	}
	if p := src.Get("u1"); p == nil || p.Name != "web" {
		t.Errorf("Get(u1) = %v", p)
	}
	if _, err := client.CoreV1().Pods("team").Create(ctx, apiPod("team", "api", "u3", false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for got := nsNames(next(t, src)); len(got) != 2; got = nsNames(next(t, src)) {
		t.Logf("intermediate set %v", got)
	}
	if err := client.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for got := nsNames(next(t, src)); len(got) != 1 || got[0] != "team/api"; got = nsNames(next(t, src)) {
		t.Logf("intermediate set %v", got)
	}
}
