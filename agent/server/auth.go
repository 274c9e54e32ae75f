package server

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Authentication and authorization of the main port, as the kubelet's: a
// request is authenticated by a client certificate (ClientCAFile), else by a
// bearer token (Options.TokenAuthenticator: webhook authentication), else as
// system:anonymous when AnonymousAuth is set; a certificate or token presented
// and refused is a 401 even then. An authenticated request is then authorized
// (Options.Authorizer: webhook authorization) with the attributes of
// RequestAttributes; nil lets every authenticated request through (the
// kubelet's AlwaysAllow).

// User is who a request comes from.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// Well-known users and groups of Kubernetes authentication.
const (
	AnonymousUser        = "system:anonymous"
	UnauthenticatedGroup = "system:unauthenticated"
	AuthenticatedGroup   = "system:authenticated"
)

const (
	authorizationHeader     = "Authorization"
	websocketProtocolHeader = "Sec-WebSocket-Protocol"
	// bearerProtocolPrefix starts a WebSocket subprotocol carrying a bearer
	// token (base64url, unpadded), for clients that cannot set headers.
	bearerProtocolPrefix = "base64url.bearer.authorization.k8s.io."
)

// TokenAuthenticator authenticates a bearer token. ok false with a nil error
// means the token is not valid; an error means it could not be checked (both
// answer 401).
type TokenAuthenticator interface {
	AuthenticateToken(ctx context.Context, token string) (u *User, ok bool, err error)
}

// Attributes describe a request to the kubelet API for authorization: a
// resource request on the node object (resource "nodes", name the node's,
// apiVersion v1) with a verb and a subresource.
type Attributes struct {
	User        User
	Verb        string
	APIVersion  string
	Resource    string
	Subresource string
	Name        string
	Path        string
}

// Authorizer decides whether a request with attributes a is allowed. An error
// means it could not decide (the request gets 500).
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (allowed bool, reason string, err error)
}

// pathSubresource says that a request to prefix, or below it when it ends in
// "/" or names a directory, is authorized with subresource.
type pathSubresource struct {
	prefix      string
	subresource string
}

// Subresources of the kubelet's fine-grained authorization (on by default
// since 1.33, locked on since 1.36): the first entry whose prefix matches adds
// its subresource, then one of requestSubresources' is added too, so either
// allows the request.
var fineGrainedSubresources = []pathSubresource{
	{"/allocatedPods", "pods"},
	{"/pods", "pods"},
	{"/healthz", "healthz"},
	{"/configz", "configz"},
	{"/runningpods/", "pods"},
}

// requestSubresources: the first entry whose prefix matches gives the
// subresource; proxy when none does (exec, attach, portForward, run,
// containerLogs, /debug/... as pprof and the pods' timelines, ...).
var requestSubresources = []pathSubresource{
	{"/stats/", "stats"},
	{"/metrics", "metrics"},
	{"/logs/", "log"},
	{"/checkpoint/", "checkpoint"},
	{"/statusz", "statusz"},
	{"/flagz", "configz"},
}

// subresourceOf is the subresource of the first entry of table matching path.
func subresourceOf(table []pathSubresource, path string) (string, bool) {
	for _, e := range table {
		if isSubpath(path, e.prefix) {
			return e.subresource, true
		}
	}
	return "", false
}

// RequestAttributes maps a request to the attributes it is authorized with,
// as the kubelet does: the verb from the method (GET get, POST create, PUT
// update, PATCH patch, DELETE delete), resource nodes, name nodeName, and the
// subresources from the path (fineGrainedSubresources, then
// requestSubresources or proxy), any of which may allow it. For example
// /pods is pods and proxy, /stats/summary stats, /exec/... proxy.
func RequestAttributes(u User, r *http.Request, nodeName string) []Attributes {
	path := r.URL.Path
	subs := make([]string, 0, 2)
	if sub, ok := subresourceOf(fineGrainedSubresources, path); ok {
		subs = append(subs, sub)
	}
	sub, ok := subresourceOf(requestSubresources, path)
	if !ok {
		sub = "proxy"
	}
	subs = append(subs, sub)
	out := make([]Attributes, 0, len(subs))
	for _, sub := range subs {
		out = append(out, Attributes{
			User: u, Verb: verbOf(r.Method), APIVersion: "v1",
			Resource: "nodes", Subresource: sub, Name: nodeName, Path: path,
		})
	}
	return out
}

// verbOf is the API verb of an HTTP method; "" for others (HEAD, OPTIONS...).
func verbOf(method string) string {
	switch method {
	case http.MethodGet:
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return ""
}

// isSubpath says whether path is dir or below it ("/stats" and "/stats/x" are
// below "/stats/", "/statsx" is not).
func isSubpath(path, dir string) bool {
	dir = strings.TrimSuffix(dir, "/")
	return path == dir || (strings.HasPrefix(path, dir) && path[len(dir)] == '/')
}

// secured wraps the main port's handler with authentication and authorization.
func (s *Server) secured(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.authenticate(r)
		if err != nil {
			s.log.Debug("kubelet API request unauthenticated", "method", r.Method, "path", r.URL.Path, "err", err)
			writeError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		if s.o.Authorizer != nil {
			attrs := RequestAttributes(*u, r, s.nodeName)
			subs := make([]string, 0, len(attrs))
			allowed := false
			for _, a := range attrs {
				subs = append(subs, a.Subresource)
				ok, _, err := s.o.Authorizer.Authorize(r.Context(), a)
				if err != nil {
					s.log.Warn("kubelet API authorization error", "user", u.Name, "verb", a.Verb, "subresource", a.Subresource, "err", err)
					writeError(w, http.StatusInternalServerError, fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)", u.Name, a.Verb, a.Resource, a.Subresource))
					return
				}
				if ok {
					allowed = true
					break
				}
			}
			if !allowed {
				s.log.Debug("kubelet API request forbidden", "user", u.Name, "verb", attrs[0].Verb, "subresources", subs, "path", r.URL.Path)
				// The kubelet's message, word for word.
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Header().Set("X-Content-Type-Options", "nosniff")
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprintf(w, "Forbidden (user=%s, verb=%s, resource=%s, subresource(s)=%v)\n", u.Name, attrs[0].Verb, attrs[0].Resource, subs)
				return
			}
		}
		s.log.Debug("kubelet API request", "user", u.Name, "method", r.Method, "path", r.URL.Path)
		next.ServeHTTP(w, r)
	})
}

// authenticate finds the request's user: a verified client certificate, a
// valid bearer token, or anonymous. A certificate or token presented and
// refused is an error even when anonymous requests are allowed (as the
// kubelet's authenticator fails on error before falling back to anonymous).
// A bearer token that authenticated is removed from the request, so it is not
// passed on (to a streaming server the request is proxied to).
func (s *Server) authenticate(r *http.Request) (*User, error) {
	var certErr error
	if s.clientCAs != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		u, err := s.verifyClientCert(r.TLS.PeerCertificates)
		if err == nil {
			return u, nil
		}
		certErr = err
	}
	if s.o.TokenAuthenticator != nil {
		token, fromProtocol := bearerToken(r)
		if token != "" {
			u, ok, err := s.o.TokenAuthenticator.AuthenticateToken(r.Context(), token)
			if err != nil {
				return nil, fmt.Errorf("bearer token: %w", err)
			}
			if !ok {
				return nil, fmt.Errorf("bearer token: invalid")
			}
			if fromProtocol {
				dropBearerProtocol(r)
			} else {
				r.Header.Del(authorizationHeader)
			}
			return withGroup(u, AuthenticatedGroup), nil
		}
	}
	if certErr != nil {
		return nil, certErr
	}
	if s.o.AnonymousAuth {
		return &User{Name: AnonymousUser, Groups: []string{UnauthenticatedGroup}}, nil
	}
	return nil, fmt.Errorf("no credentials")
}

// verifyClientCert verifies a client certificate chain against the client CAs:
// the user is its common name, the groups its organizations.
func (s *Server) verifyClientCert(certs []*x509.Certificate) (*User, error) {
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         s.clientCAs,
		Intermediates: inter,
		CurrentTime:   s.clock.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("client certificate %q: %w", certs[0].Subject.String(), err)
	}
	u := &User{Name: certs[0].Subject.CommonName, Groups: slices.Clone(certs[0].Subject.Organization)}
	return withGroup(u, AuthenticatedGroup), nil
}

// withGroup returns u with group added, unless it has it.
func withGroup(u *User, group string) *User {
	if slices.Contains(u.Groups, group) {
		return u
	}
	c := *u
	c.Groups = append(slices.Clone(u.Groups), group)
	return &c
}

// bearerToken returns the request's bearer token: the Authorization header's
// ("Bearer TOKEN"), else one carried in a WebSocket subprotocol
// (base64url.bearer.authorization.k8s.io.TOKEN, how browsers' WebSocket
// clients send it); fromProtocol says which.
func bearerToken(r *http.Request) (token string, fromProtocol bool) {
	if h := strings.TrimSpace(r.Header.Get(authorizationHeader)); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "bearer") {
			if t := strings.TrimSpace(rest); t != "" {
				return t, false
			}
		}
	}
	if r.Header.Get("Upgrade") == "" {
		return "", false
	}
	for _, p := range websocketProtocols(r) {
		if enc, ok := strings.CutPrefix(p, bearerProtocolPrefix); ok {
			data, err := base64.RawURLEncoding.DecodeString(enc)
			if err == nil && len(data) > 0 {
				return string(data), true
			}
		}
	}
	return "", false
}

func websocketProtocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values(websocketProtocolHeader) {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// dropBearerProtocol removes the token subprotocol from the request.
func dropBearerProtocol(r *http.Request) {
	var keep []string
	for _, p := range websocketProtocols(r) {
		if !strings.HasPrefix(p, bearerProtocolPrefix) {
			keep = append(keep, p)
		}
	}
	r.Header.Del(websocketProtocolHeader)
	if len(keep) > 0 {
		r.Header.Set(websocketProtocolHeader, strings.Join(keep, ","))
	}
}
