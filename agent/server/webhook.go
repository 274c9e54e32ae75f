package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Webhook authentication and authorization, the kubelet's: bearer tokens are
// checked with a TokenReview and requests authorized with a
// SubjectAccessReview, both created in the API server, their answers cached.

// The kubelet's default cache lifetimes (KubeletConfiguration
// authentication.webhook.cacheTTL, authorization.webhook.cacheAuthorizedTTL and
// cacheUnauthorizedTTL).
const (
	DefaultTokenCacheTTL        = 2 * time.Minute
	DefaultAuthorizedCacheTTL   = 5 * time.Minute
	DefaultUnauthorizedCacheTTL = 30 * time.Second
)

// maxCached bounds each webhook cache; past it, expired answers are dropped,
// then any.
const maxCached = 4096

// webhookBackoff is how a failed review is retried (the API server's default
// for authentication and authorization webhooks: 500 ms, ×1.5, 5 tries).
var webhookBackoff = backoff{first: 500 * time.Millisecond, factor: 1.5, tries: 5}

// WebhookAuthenticatorOptions configures NewWebhookAuthenticator.
type WebhookAuthenticatorOptions struct {
	// CacheTTL is how long an answer (authenticated or not) is reused; 0 means
	// DefaultTokenCacheTTL, a negative value no caching. Errors are not cached.
	CacheTTL time.Duration
	Clock    clock.PassiveClock // nil means the real clock
}

// WebhookAuthenticator authenticates bearer tokens with TokenReviews
// (authentication.k8s.io/v1) in the API server.
type WebhookAuthenticator struct {
	client kubernetes.Interface
	cache  *ttlCache[tokenAnswer]
	ttl    time.Duration
	retry  backoff
}

type tokenAnswer struct {
	user *User
	ok   bool
}

// NewWebhookAuthenticator returns a TokenAuthenticator that asks the API server
// of client.
func NewWebhookAuthenticator(client kubernetes.Interface, o WebhookAuthenticatorOptions) *WebhookAuthenticator {
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultTokenCacheTTL
	}
	return &WebhookAuthenticator{client: client, cache: newTTLCache[tokenAnswer](o.Clock), ttl: o.CacheTTL, retry: webhookBackoff}
}

// AuthenticateToken implements TokenAuthenticator.
func (a *WebhookAuthenticator) AuthenticateToken(ctx context.Context, token string) (*User, bool, error) {
	sum := sha256.Sum256([]byte(token))
	key := string(sum[:])
	if ans, ok := a.cache.get(key); ok {
		return ans.user, ans.ok, nil
	}
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	var result *authenticationv1.TokenReview
	err := a.retry.do(ctx, func() (err error) {
		result, err = a.client.AuthenticationV1().TokenReviews().Create(ctx, review, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("token review: %w", err)
	}
	st := result.Status
	ans := tokenAnswer{ok: st.Authenticated}
	if st.Authenticated {
		u := &User{Name: st.User.Username, UID: st.User.UID, Groups: st.User.Groups}
		if len(st.User.Extra) > 0 {
			u.Extra = map[string][]string{}
			for k, v := range st.User.Extra {
				u.Extra[k] = v
			}
		}
		ans.user = u
	} else if st.Error != "" {
		// Not authenticated, with the API server's reason: an answer, not cached
		// as one, as the kubelet does not cache errors.
		return nil, false, errors.New(st.Error)
	}
	if a.ttl > 0 {
		a.cache.put(key, ans, a.ttl)
	}
	return ans.user, ans.ok, nil
}

// WebhookAuthorizerOptions configures NewWebhookAuthorizer.
type WebhookAuthorizerOptions struct {
	// CacheAuthorizedTTL and CacheUnauthorizedTTL are how long an allowed and a
	// refused answer are reused; 0 means the defaults (5 minutes, 30 seconds), a
	// negative value no caching.
	CacheAuthorizedTTL, CacheUnauthorizedTTL time.Duration
	Clock                                    clock.PassiveClock // nil means the real clock
}

// WebhookAuthorizer authorizes requests with SubjectAccessReviews
// (authorization.k8s.io/v1) in the API server.
type WebhookAuthorizer struct {
	client            kubernetes.Interface
	cache             *ttlCache[authzAnswer]
	allowTTL, denyTTL time.Duration
	retry             backoff
}

type authzAnswer struct {
	allowed bool
	reason  string
}

// NewWebhookAuthorizer returns an Authorizer that asks the API server of client.
func NewWebhookAuthorizer(client kubernetes.Interface, o WebhookAuthorizerOptions) *WebhookAuthorizer {
	if o.CacheAuthorizedTTL == 0 {
		o.CacheAuthorizedTTL = DefaultAuthorizedCacheTTL
	}
	if o.CacheUnauthorizedTTL == 0 {
		o.CacheUnauthorizedTTL = DefaultUnauthorizedCacheTTL
	}
	return &WebhookAuthorizer{client: client, cache: newTTLCache[authzAnswer](o.Clock),
		allowTTL: o.CacheAuthorizedTTL, denyTTL: o.CacheUnauthorizedTTL, retry: webhookBackoff}
}

// Authorize implements Authorizer.
func (z *WebhookAuthorizer) Authorize(ctx context.Context, a Attributes) (bool, string, error) {
	spec := authorizationv1.SubjectAccessReviewSpec{
		User:   a.User.Name,
		UID:    a.User.UID,
		Groups: a.User.Groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb:        a.Verb,
			Version:     a.APIVersion,
			Resource:    a.Resource,
			Subresource: a.Subresource,
			Name:        a.Name,
		},
	}
	if len(a.User.Extra) > 0 {
		spec.Extra = map[string]authorizationv1.ExtraValue{}
		for k, v := range a.User.Extra {
			spec.Extra[k] = v
		}
	}
	keyData, err := json.Marshal(spec)
	if err != nil {
		return false, "", fmt.Errorf("subject access review: %w", err)
	}
	key := string(keyData)
	if ans, ok := z.cache.get(key); ok {
		return ans.allowed, ans.reason, nil
	}
	var result *authorizationv1.SubjectAccessReview
	err = z.retry.do(ctx, func() (err error) {
		result, err = z.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return false, "", fmt.Errorf("subject access review: %w", err)
	}
	st := result.Status
	if st.Allowed && st.Denied {
		return false, st.Reason, errors.New("subject access review: both allowed and denied")
	}
	ans := authzAnswer{allowed: st.Allowed, reason: st.Reason}
	ttl := z.denyTTL
	if ans.allowed {
		ttl = z.allowTTL
	}
	if ttl > 0 {
		z.cache.put(key, ans, ttl)
	}
	return ans.allowed, ans.reason, nil
}

// backoff retries a webhook call that failed in a way worth retrying.
type backoff struct {
	first  time.Duration
	factor float64
	tries  int
}

func (b backoff) do(ctx context.Context, call func() error) error {
	wait := b.first
	for i := 1; ; i++ {
		err := call()
		if err == nil || i >= b.tries || !retriable(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = time.Duration(float64(wait) * b.factor)
	}
}

// retriable: the API server is busy, failing or unreachable (the API server's
// own webhook client retries those), not a refusal.
func retriable(err error) bool {
	if apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsUnexpectedServerError(err) {
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code >= 500
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// ttlCache holds answers until they expire; safe for concurrent use.
type ttlCache[V any] struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	m     map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[V any](c clock.PassiveClock) *ttlCache[V] {
	if c == nil {
		c = clock.RealClock{}
	}
	return &ttlCache[V]{clock: c, m: map[string]ttlEntry[V]{}}
}

func (c *ttlCache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	if !c.clock.Now().Before(e.expires) {
		delete(c.m, key)
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(key string, v V, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if len(c.m) >= maxCached {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < maxCached {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = ttlEntry[V]{v: v, expires: now.Add(ttl)}
}
