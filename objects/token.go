package objects

import (
	"context"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TokenSource is implemented by sources that issue service account tokens
// (the API source: TokenRequest), for serviceAccountToken projections.
type TokenSource interface {
	// ServiceAccountToken returns a token of the pod's service account for
	// audience (empty: the API server's) valid for about expirationSeconds,
	// bound to the pod. A cached token is reused until 80% of its lifetime has
	// passed (or it has less than 24 h left), as the kubelet's token manager.
	ServiceAccountToken(ctx context.Context, pod *v1.Pod, audience string, expirationSeconds int64) (string, error)
}

// tokens caches issued tokens by request.
type tokens struct {
	mu sync.Mutex
	m  map[tokenKey]*authenticationv1.TokenRequest
}

type tokenKey struct {
	namespace, serviceAccount, audience string
	expiration                          int64
	pod                                 types.UID
}

var _ TokenSource = (*API)(nil)

// ServiceAccountToken issues (TokenRequest) or reuses a token bound to pod.
func (a *API) ServiceAccountToken(ctx context.Context, pod *v1.Pod, audience string, expirationSeconds int64) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	if expirationSeconds <= 0 {
		expirationSeconds = 3600
	}
	k := tokenKey{pod.Namespace, sa, audience, expirationSeconds, pod.UID}
	now := a.o.Clock.Now()
	a.tokens.mu.Lock()
	if a.tokens.m == nil {
		a.tokens.m = map[tokenKey]*authenticationv1.TokenRequest{}
	}
	if tr := a.tokens.m[k]; tr != nil && !tokenNeedsRefresh(tr, now) {
		a.tokens.mu.Unlock()
		return tr.Status.Token, nil
	}
	a.tokens.mu.Unlock()

	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &expirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
	}}
	if audience != "" {
		req.Spec.Audiences = []string{audience}
	}
	tr, err := a.o.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for service account %s/%s: %w", pod.Namespace, sa, err)
	}
	// What was asked and when, to know when it is due (the response may
	// shorten the lifetime).
	if tr.Spec.ExpirationSeconds == nil {
		tr.Spec.ExpirationSeconds = &expirationSeconds
	}
	tr.CreationTimestamp = metav1.NewTime(now)
	a.tokens.mu.Lock()
	a.tokens.m[k] = tr
	a.tokens.mu.Unlock()
	return tr.Status.Token, nil
}

// tokenNeedsRefresh: 80% of the lifetime passed, or less than 24 h left of a
// long token (the kubelet's requiresRefresh).
func tokenNeedsRefresh(tr *authenticationv1.TokenRequest, now time.Time) bool {
	exp := tr.Status.ExpirationTimestamp.Time
	if exp.IsZero() {
		return true
	}
	life := time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
	if now.After(tr.CreationTimestamp.Add(life * 8 / 10)) {
		return true
	}
	return exp.Sub(now) < 24*time.Hour && now.After(exp.Add(-life/5))
}

// forgetTokens drops the tokens of pods that are gone (Run, with idle watches).
func (t *tokens) forgetBefore(cutoff time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, tr := range t.m {
		if tr.Status.ExpirationTimestamp.Time.Before(cutoff) {
			delete(t.m, k)
		}
	}
}
