package objects

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestAPISource: objects read through a watch of their own, changes reported,
// NotFound as the API says it, a refused list reported as the refusal.
func TestAPISource(t *testing.T) {
	client := fake.NewClientset(
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Data: map[string]string{"k": "v1"}},
		&v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "creds"}, Data: map[string][]byte{"p": []byte("s")}},
	)
	// The node may not read "private" (the Node authorizer's answer).
	client.PrependReactor("list", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "team" && a.(k8stesting.ListAction).GetListRestrictions().Fields.String() == "metadata.name=private" {
			return true, nil, apierrors.NewForbidden(v1.Resource("secrets"), "private", errors.New("no relationship found between node 'n1' and this object"))
		}
		return false, nil, nil
	})
	src, err := NewAPI(APIOptions{Client: client, SyncTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var changes atomic.Int32
	stop := src.Subscribe(func(r Ref) {
		if r == (Ref{KindConfigMap, "default", "web"}) {
			changes.Add(1)
		}
	})
	defer stop()

	cm, err := src.ConfigMap(ctx, "default", "web")
	if err != nil || cm.Data["k"] != "v1" {
		t.Fatalf("ConfigMap: %v %v", cm, err)
	}
	if s, err := src.Secret(ctx, "team", "creds"); err != nil || string(s.Data["p"]) != "s" {
		t.Fatalf("Secret: %v %v", s, err)
	}
	if _, err := src.ConfigMap(ctx, "default", "nope"); !apierrors.IsNotFound(err) {
		t.Errorf("a missing configMap: %v, want NotFound", err)
	}
	if _, err := src.Secret(ctx, "team", "private"); !apierrors.IsForbidden(err) {
		t.Errorf("a refused secret: %v, want Forbidden", err)
	}
	upd := cm.DeepCopy()
	upd.Data["k"] = "v2"
	if _, err := client.CoreV1().ConfigMaps("default").Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cm, _ := src.ConfigMap(ctx, "default", "web")
		if cm.Data["k"] == "v2" && changes.Load() >= 2 { // the first list, the update
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the update did not arrive: %v, %d notifications", cm.Data, changes.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFirst(t *testing.T) {
	a, b := NewStatic(), NewStatic()
	a.SetConfigMap(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "both"}, Data: map[string]string{"from": "a"}})
	b.SetConfigMap(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "both"}, Data: map[string]string{"from": "b"}})
	b.SetSecret(&v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "only-b"}})
	f := First(a, b)
	ctx := context.Background()
	if cm, err := f.ConfigMap(ctx, "default", "both"); err != nil || cm.Data["from"] != "a" {
		t.Errorf("both: %v %v, want a's", cm, err)
	}
	if _, err := f.Secret(ctx, "default", "only-b"); err != nil {
		t.Errorf("only-b: %v", err)
	}
	if _, err := f.Secret(ctx, "default", "none"); !apierrors.IsNotFound(err) {
		t.Errorf("none: %v, want NotFound", err)
	}
	var n atomic.Int32
	cancel := f.(Notifier).Subscribe(func(Ref) { n.Add(1) })
	defer cancel()
	b.SetSecret(&v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "new"}})
	if n.Load() != 1 {
		t.Errorf("%d notifications, want 1", n.Load())
	}
}
