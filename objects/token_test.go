package objects

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestServiceAccountToken: a TokenRequest bound to the pod, reused until 80%
// of its lifetime has passed, then renewed.
func TestServiceAccountToken(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	client := fake.NewClientset()
	issued := 0
	var last *authenticationv1.TokenRequest
	client.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		issued++
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		last = tr.DeepCopy()
		tr.Status.Token = fmt.Sprintf("token-%d", issued)
		tr.Status.ExpirationTimestamp = metav1.NewTime(clk.Now().Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second))
		return true, tr, nil
	})
	src, err := NewAPI(APIOptions{Client: client, Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web", UID: "pod-uid"}, Spec: v1.PodSpec{ServiceAccountName: "builder"}}
	ctx := context.Background()
	tok, err := src.ServiceAccountToken(ctx, pod, "vault", 3600)
	if err != nil || tok != "token-1" {
		t.Fatalf("token %q %v", tok, err)
	}
	if b := last.Spec.BoundObjectRef; b == nil || b.Kind != "Pod" || b.UID != "pod-uid" || len(last.Spec.Audiences) != 1 || last.Spec.Audiences[0] != "vault" {
		t.Errorf("request %+v", last.Spec)
	}
	clk.Step(40 * time.Minute)
	if tok, _ := src.ServiceAccountToken(ctx, pod, "vault", 3600); tok != "token-1" {
		t.Errorf("at 67%% of its lifetime: %q, want the cached token", tok)
	}
	clk.Step(10 * time.Minute)
	if tok, _ := src.ServiceAccountToken(ctx, pod, "vault", 3600); tok != "token-2" {
		t.Errorf("at 83%% of its lifetime: %q, want a new token", tok)
	}
}
