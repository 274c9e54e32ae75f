package server

import (
	"context"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodekit-dev/nodekit/internal/testpki"
)

func TestRequestAttributes(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		verb         string
		subs         []string
	}{
		{"GET", "/pods", "get", []string{"pods", "proxy"}},
		{"GET", "/pods/", "get", []string{"pods", "proxy"}},
		{"GET", "/allocatedPods", "get", []string{"pods", "proxy"}},
		{"GET", "/runningpods/", "get", []string{"pods", "proxy"}},
		{"GET", "/healthz", "get", []string{"healthz", "proxy"}},
		{"GET", "/healthz/syncloop", "get", []string{"healthz", "proxy"}},
		{"GET", "/configz", "get", []string{"configz", "proxy"}},
		{"GET", "/stats/summary", "get", []string{"stats"}},
		{"POST", "/stats/summary", "create", []string{"stats"}},
		{"GET", "/stats", "get", []string{"stats"}},
		{"GET", "/statsx", "get", []string{"proxy"}},
		{"GET", "/metrics", "get", []string{"metrics"}},
		{"GET", "/metrics/resource", "get", []string{"metrics"}},
		{"GET", "/metrics/cadvisor", "get", []string{"metrics"}},
		{"GET", "/logs/", "get", []string{"log"}},
		{"GET", "/logs/messages", "get", []string{"log"}},
		{"POST", "/checkpoint/default/web/app", "create", []string{"checkpoint"}},
		{"GET", "/statusz", "get", []string{"statusz"}},
		{"GET", "/flagz", "get", []string{"configz"}},
		{"POST", "/exec/default/web/app", "create", []string{"proxy"}},
		{"GET", "/exec/default/web/app", "get", []string{"proxy"}},
		{"POST", "/attach/default/web/app", "create", []string{"proxy"}},
		{"POST", "/portForward/default/web", "create", []string{"proxy"}},
		{"POST", "/run/default/web/app", "create", []string{"proxy"}},
		{"GET", "/containerLogs/default/web/app", "get", []string{"proxy"}},
		{"GET", "/debug/pods/default/web/timeline", "get", []string{"proxy"}},
		{"GET", "/debug/pprof/", "get", []string{"proxy"}},
		{"PUT", "/other", "update", []string{"proxy"}},
		{"PATCH", "/other", "patch", []string{"proxy"}},
		{"DELETE", "/other", "delete", []string{"proxy"}},
		{"HEAD", "/pods", "", []string{"pods", "proxy"}},
		{"GET", "/podsx", "get", []string{"proxy"}},
		{"GET", "/allocatedPods/x", "get", []string{"pods", "proxy"}},
		{"GET", "/runningpods", "get", []string{"pods", "proxy"}},
		{"GET", "/configz/x", "get", []string{"configz", "proxy"}},
		{"GET", "/metricsx", "get", []string{"proxy"}},
		{"GET", "/logs", "get", []string{"log"}},
		{"GET", "/flagz/x", "get", []string{"configz"}},
		{"GET", "/", "get", []string{"proxy"}},
	} {
		r := httptest.NewRequest(tc.method, "https://node:10250"+tc.path, nil)
		u := User{Name: "alice", Groups: []string{"g"}}
		attrs := RequestAttributes(u, r, "node-a")
		var subs []string
		for _, a := range attrs {
			subs = append(subs, a.Subresource)
			if a.Verb != tc.verb || a.Resource != "nodes" || a.Name != "node-a" || a.APIVersion != "v1" || a.Path != tc.path || a.User.Name != "alice" {
				t.Errorf("%s %s: attributes %+v", tc.method, tc.path, a)
			}
		}
		if !slices.Equal(subs, tc.subs) {
			t.Errorf("%s %s: subresources %v, want %v", tc.method, tc.path, subs, tc.subs)
		}
	}
}

// reviews is an API server's answers to TokenReviews and SubjectAccessReviews
// on a fake clientset, counting them.
type reviews struct {
	mu      sync.Mutex
	tokens  map[string]authenticationv1.UserInfo // valid tokens
	allowed map[string]bool                      // "user verb subresource"
	fail    error                                // every review fails
	nTR     int
	nSAR    int
	sars    []authorizationv1.SubjectAccessReviewSpec
}

func (rv *reviews) client() *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		rv.mu.Lock()
		defer rv.mu.Unlock()
		rv.nTR++
		if rv.fail != nil {
			return true, nil, rv.fail
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview).DeepCopy()
		if u, ok := rv.tokens[tr.Spec.Token]; ok {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: u}
		}
		return true, tr, nil
	})
	c.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		rv.mu.Lock()
		defer rv.mu.Unlock()
		rv.nSAR++
		if rv.fail != nil {
			return true, nil, rv.fail
		}
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		rv.sars = append(rv.sars, sar.Spec)
		ra := sar.Spec.ResourceAttributes
		if rv.allowed[sar.Spec.User+" "+ra.Verb+" "+ra.Subresource] {
			sar.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "bound"}
		} else {
			sar.Status = authorizationv1.SubjectAccessReviewStatus{Reason: "no binding"}
		}
		return true, sar, nil
	})
	return c
}

func (rv *reviews) counts() (tr, sar int) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.nTR, rv.nSAR
}

func (rv *reviews) setFail(err error) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.fail = err
}

func TestWebhookAuthenticatorCaches(t *testing.T) {
	rv := &reviews{tokens: map[string]authenticationv1.UserInfo{
		"good": {Username: "alice", UID: "u1", Groups: []string{"devs", AuthenticatedGroup}, Extra: map[string]authenticationv1.ExtraValue{"k": {"v"}}},
	}}
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	a := NewWebhookAuthenticator(rv.client(), WebhookAuthenticatorOptions{Clock: clk})
	ctx := context.Background()
	check := func(token string, wantOK bool, wantTR int) {
		t.Helper()
		u, ok, err := a.AuthenticateToken(ctx, token)
		if err != nil || ok != wantOK {
			t.Fatalf("token %q: ok %v err %v, want ok %v", token, ok, err, wantOK)
		}
		if ok && (u.Name != "alice" || u.UID != "u1" || !slices.Equal(u.Groups, []string{"devs", AuthenticatedGroup}) || u.Extra["k"][0] != "v") {
			t.Errorf("token %q: user %+v", token, u)
		}
		if tr, _ := rv.counts(); tr != wantTR {
			t.Errorf("token %q: %d TokenReviews, want %d", token, tr, wantTR)
		}
	}
	check("good", true, 1)
	check("good", true, 1) // cached
	check("bad", false, 2)
	check("bad", false, 2) // an invalid token is cached too
	clk.SetTime(clk.Now().Add(DefaultTokenCacheTTL - time.Second))
	check("good", true, 2)
	clk.SetTime(clk.Now().Add(2 * time.Second)) // past the 2-minute TTL
	check("good", true, 3)
	check("bad", false, 4)

	// Errors are not cached; transient ones are retried.
	rv.setFail(apierrors.NewForbidden(authenticationv1.Resource("tokenreviews"), "", errors.New("no")))
	if _, ok, err := a.AuthenticateToken(ctx, "other"); ok || err == nil || !strings.Contains(err.Error(), "token review") {
		t.Errorf("failing review: ok %v err %v", ok, err)
	}
	if tr, _ := rv.counts(); tr != 5 {
		t.Errorf("a refusal was retried: %d reviews, want 5", tr)
	}
	a.retry = backoff{first: time.Millisecond, factor: 1, tries: 3}
	rv.setFail(apierrors.NewInternalError(errors.New("etcd down")))
	if _, _, err := a.AuthenticateToken(ctx, "other"); err == nil {
		t.Error("failing review: no error")
	}
	if tr, _ := rv.counts(); tr != 8 {
		t.Errorf("an internal error: %d reviews, want 8 (3 tries)", tr)
	}
	rv.setFail(nil)
	check("other", false, 9)
}

func TestWebhookAuthorizerCaches(t *testing.T) {
	rv := &reviews{allowed: map[string]bool{"alice get proxy": true}}
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	z := NewWebhookAuthorizer(rv.client(), WebhookAuthorizerOptions{Clock: clk})
	ctx := context.Background()
	attrs := func(user, verb, sub string) Attributes {
		return Attributes{User: User{Name: user, UID: "u-" + user, Groups: []string{"g1", AuthenticatedGroup}, Extra: map[string][]string{"scopes": {"a"}}},
			Verb: verb, APIVersion: "v1", Resource: "nodes", Subresource: sub, Name: "node-a", Path: "/x"}
	}
	check := func(a Attributes, want bool, wantSAR int) {
		t.Helper()
		ok, reason, err := z.Authorize(ctx, a)
		if err != nil || ok != want {
			t.Fatalf("%s %s %s: allowed %v (%s) err %v, want %v", a.User.Name, a.Verb, a.Subresource, ok, reason, err, want)
		}
		if _, n := rv.counts(); n != wantSAR {
			t.Errorf("%s %s %s: %d SubjectAccessReviews, want %d", a.User.Name, a.Verb, a.Subresource, n, wantSAR)
		}
	}
	check(attrs("alice", "get", "proxy"), true, 1)
	spec := rv.sars[0]
	ra := spec.ResourceAttributes
	if spec.User != "alice" || spec.UID != "u-alice" || !slices.Equal(spec.Groups, []string{"g1", AuthenticatedGroup}) || spec.Extra["scopes"][0] != "a" ||
		ra == nil || ra.Verb != "get" || ra.Version != "v1" || ra.Group != "" || ra.Resource != "nodes" || ra.Subresource != "proxy" || ra.Name != "node-a" || ra.Namespace != "" {
		t.Errorf("review spec %+v (resource attributes %+v)", spec, ra)
	}
	check(attrs("alice", "get", "proxy"), true, 1)
	check(attrs("bob", "get", "proxy"), false, 2)
	check(attrs("bob", "get", "proxy"), false, 2)
	check(attrs("alice", "create", "proxy"), false, 3) // another verb, another review
	clk.SetTime(clk.Now().Add(31 * time.Second))       // past the unauthorized TTL (30s), within the authorized (5m)
	check(attrs("alice", "get", "proxy"), true, 3)
	check(attrs("bob", "get", "proxy"), false, 4)
	clk.SetTime(clk.Now().Add(5 * time.Minute))
	check(attrs("alice", "get", "proxy"), true, 5)
	// Errors are not cached.
	rv.setFail(apierrors.NewBadRequest("nope"))
	if _, _, err := z.Authorize(ctx, attrs("carol", "get", "stats")); err == nil {
		t.Error("failing review: no error")
	}
	rv.setFail(nil)
	check(attrs("carol", "get", "stats"), false, 7)
}

// authServer is a server authenticating tokens and authorizing with rv, a
// client CA, anonymous as asked.
func authServer(t *testing.T, rv *reviews, anonymous bool) (*Server, Options, *testpki.CA) {
	t.Helper()
	ca := testpki.NewCA(t, "test-ca")
	caFile := filepath.Join(t.TempDir(), "ca.PEM")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	c := rv.client()
	o := baseOptions(t, &fakeProvider{pods: []*v1.Pod{testPod("default", "web", "nginx")}})
	o.ClientCAFile = caFile
	o.AnonymousAuth = anonymous
	o.NodeName = "node-a"
	o.TokenAuthenticator = NewWebhookAuthenticator(c, WebhookAuthenticatorOptions{})
	o.Authorizer = NewWebhookAuthorizer(c, WebhookAuthorizerOptions{})
	return start(t, o), o, ca
}

func do(t *testing.T, c *http.Client, method, url string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(body)
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

func TestMainAPIWebhookAuth(t *testing.T) {
	rv := &reviews{
		tokens: map[string]authenticationv1.UserInfo{
			"alice-token": {Username: "alice", Groups: []string{AuthenticatedGroup}},
			"bob-token":   {Username: "bob", Groups: []string{AuthenticatedGroup}},
		},
		allowed: map[string]bool{
			"alice get proxy":              true, // nodes/proxy: everything
			"bob get stats":                true, // nodes/stats only
			"system:node:x get pods":       true,
			"system:anonymous get healthz": true,
		},
	}
	s, o, ca := authServer(t, rv, false)
	c := tlsClient(t, o.CertDir, nil)
	for _, tc := range []struct {
		name   string
		path   string
		header http.Header
		code   int
		body   string
	}{
		{"no credentials", "/pods", nil, 401, "Unauthorized\n"},
		{"an invalid token", "/pods", bearer("nope"), 401, "Unauthorized\n"},
		{"not a bearer token", "/pods", http.Header{"Authorization": {"Basic YTpi"}}, 401, "Unauthorized\n"},
		{"nodes/proxy allows /pods", "/pods", bearer("alice-token"), 200, ""},
		{"nodes/proxy does not allow /stats/summary (stats)", "/stats/summary", bearer("alice-token"), 403,
			"Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[stats])\n"},
		{"nodes/stats does not allow /pods", "/pods", bearer("bob-token"), 403,
			"Forbidden (user=bob, verb=get, resource=nodes, subresource(s)=[pods proxy])\n"},
		{"nodes/stats allows /stats/summary", "/stats/summary", bearer("bob-token"), 200, ""},
		{"a token in a WebSocket subprotocol", "/pods", http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"},
			"Sec-Websocket-Protocol": {"v4.channel.k8s.io, " + bearerProtocolPrefix + base64.RawURLEncoding.EncodeToString([]byte("alice-token"))}}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, c, "GET", mainURL(s, tc.path), tc.header)
			if code != tc.code || (tc.body != "" && body != tc.body) {
				t.Errorf("GET %s: %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
			}
		})
	}

	// A client certificate: its organizations are the groups in the review.
	cc := tlsClient(t, o.CertDir, ca.ClientCert(t, pkix.Name{CommonName: "system:node:x", Organization: []string{"system:nodes"}}))
	if code, body := get(t, cc, mainURL(s, "/pods")); code != 200 {
		t.Errorf("GET /pods with a client certificate: %d %q", code, body)
	}
	rv.mu.Lock()
	last := rv.sars[len(rv.sars)-1]
	rv.mu.Unlock()
	if last.User != "system:node:x" || !slices.Equal(last.Groups, []string{"system:nodes", AuthenticatedGroup}) {
		t.Errorf("review of a certificate's user: %+v", last)
	}
	if code, body := get(t, cc, mainURL(s, "/metrics")); code != 403 || body != "Forbidden (user=system:node:x, verb=get, resource=nodes, subresource(s)=[metrics])\n" {
		t.Errorf("GET /metrics with a client certificate: %d %q", code, body)
	}

	// The authorizer failing: 500, the kubelet's message.
	rv.setFail(apierrors.NewBadRequest("broken"))
	// (A request not answered from the cache.)
	if code, body := do(t, c, "POST", mainURL(s, "/stats/summary"), bearer("bob-token")); code != 500 ||
		body != "Authorization error (user=bob, verb=create, resource=nodes, subresource=stats)\n" {
		t.Errorf("POST /stats/summary with the authorizer failing: %d %q", code, body)
	}
}

func TestWebhookAuthAnonymous(t *testing.T) {
	rv := &reviews{
		tokens:  map[string]authenticationv1.UserInfo{"alice-token": {Username: "alice"}},
		allowed: map[string]bool{"system:anonymous get healthz": true},
	}
	s, o, _ := authServer(t, rv, true)
	c := tlsClient(t, o.CertDir, nil)
	if code, body := get(t, c, mainURL(s, "/healthz")); code != 200 {
		t.Errorf("anonymous GET /healthz: %d %q", code, body)
	}
	rv.mu.Lock()
	last := rv.sars[len(rv.sars)-1]
	rv.mu.Unlock()
	if last.User != AnonymousUser || !slices.Equal(last.Groups, []string{UnauthenticatedGroup}) {
		t.Errorf("anonymous review: %+v", last)
	}
	if code, body := get(t, c, mainURL(s, "/pods")); code != 403 || body != "Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[pods proxy])\n" {
		t.Errorf("anonymous GET /pods: %d %q", code, body)
	}
	// A token presented and refused is not anonymous: 401.
	if code, _ := do(t, c, "GET", mainURL(s, "/healthz"), bearer("nope")); code != 401 {
		t.Errorf("GET /healthz with an invalid token, anonymous allowed: %d, want 401", code)
	}
	// So is a certificate that does not verify.
	bad := testpki.NewCA(t, "other-ca")
	if code, _ := get(t, tlsClient(t, o.CertDir, bad.ClientCert(t, pkix.Name{CommonName: "mallory"})), mainURL(s, "/healthz")); code != 401 {
		t.Errorf("GET /healthz with a foreign certificate, anonymous allowed: %d, want 401", code)
	}
	// The user of a token the API server authenticated is in system:authenticated.
	rv.mu.Lock()
	rv.allowed["alice get healthz"] = true
	rv.mu.Unlock()
	if code, _ := do(t, c, "GET", mainURL(s, "/healthz"), bearer("alice-token")); code != 200 {
		t.Errorf("GET /healthz as alice: %d", code)
	}
	rv.mu.Lock()
	last = rv.sars[len(rv.sars)-1]
	rv.mu.Unlock()
	if last.User != "alice" || !slices.Equal(last.Groups, []string{AuthenticatedGroup}) {
		t.Errorf("alice's review: %+v", last)
	}
}

func TestBearerTokenNotPassedOn(t *testing.T) {
	rv := &reviews{tokens: map[string]authenticationv1.UserInfo{"t": {Username: "alice"}}}
	s := &Server{o: Options{TokenAuthenticator: NewWebhookAuthenticator(rv.client(), WebhookAuthenticatorOptions{})}}
	r := httptest.NewRequest("GET", "/exec/a/b/c", nil)
	r.Header.Set("Authorization", "Bearer t")
	if u, err := s.authenticate(r); err != nil || u.Name != "alice" {
		t.Fatalf("authenticate: %+v %v", u, err)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		t.Errorf("the Authorization header is still there: %q", h)
	}
	r = httptest.NewRequest("GET", "/exec/a/b/c", nil)
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Protocol", "v5.channel.k8s.io,"+bearerProtocolPrefix+base64.RawURLEncoding.EncodeToString([]byte("t")))
	if u, err := s.authenticate(r); err != nil || u.Name != "alice" {
		t.Fatalf("authenticate: %+v %v", u, err)
	}
	if h := r.Header.Values("Sec-WebSocket-Protocol"); !slices.Equal(h, []string{"v5.channel.k8s.io"}) {
		t.Errorf("subprotocols passed on: %q", h)
	}
}
