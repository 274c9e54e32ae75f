package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc/status"
)

// Auth are registry credentials; it mirrors the CRI AuthConfig. Auth is
// base64("user:pass"); IdentityToken is an OAuth2 refresh token; RegistryToken is a
// bearer token sent as is. When ServerAddress is set and names another registry than
// the one pulled from, the credentials are not sent.
type Auth struct {
	Username, Password, Auth, ServerAddress, IdentityToken, RegistryToken string
}

// Pull fetches ref from its registry (registry v2 API) and stores it. ref is a tag or a
// digest reference; a bare name means docker.io/library/NAME:latest. From a
// multi-platform index the image for Options.Platform is taken. The image gets the tag
// (for tag references) and the repo digest of what ref resolved to, under ref's own
// name even when a mirror served it.
//
// The endpoints come from Options.RegistryConfig, read at every pull: the
// registry's mirrors in order, then the registry itself (unless mirrors_only). An
// endpoint that fails (unreachable, lacks the image, serves content that does not
// match its digest) is skipped for the next; the error names every endpoint tried.
//
// Errors carry a gRPC status where the cause is known: FailedPrecondition for an
// invalid registry configuration, DeadlineExceeded or Canceled when ctx ended.
func (s *Store) Pull(ctx context.Context, ref string, auth *Auth) (Image, error) {
	img, err := s.pull(ctx, ref, auth)
	if err != nil && ctx.Err() != nil {
		return Image{}, &stopped{err: err, cause: ctx.Err()}
	}
	return img, err
}

// stopped is a pull that ended because its context did. A gRPC server reports it
// with the context's code (DeadlineExceeded or Canceled), as CRI clients expect.
type stopped struct{ err, cause error }

func (e *stopped) Error() string { return e.err.Error() }
func (e *stopped) Unwrap() error { return e.err }
func (e *stopped) GRPCStatus() *status.Status {
	return status.New(status.FromContextError(e.cause).Code(), e.err.Error())
}

func (s *Store) pull(ctx context.Context, ref string, auth *Auth) (Image, error) {
	start := time.Now()
	nr, err := parseRef(ref)
	if err != nil {
		return Image{}, fmt.Errorf("pull: %w", err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return Image{}, fmt.Errorf("pull: %w", err)
	}
	cfg, err := s.registries.load()
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", nr, err)
	}
	eps := cfg.endpoints(r.Context().RegistryStr())
	var failed endpointErrors
	for _, ep := range eps {
		img, n, err := s.pullFrom(ctx, nr, r, ep, auth)
		if err == nil {
			s.log.Info("pulled image", "ref", nr.String(), "endpoint", ep.String(), "id", img.ID, "layers", len(img.Layers),
				"bytes", n, "size", img.Size, "duration", time.Since(start).Round(time.Millisecond))
			return img, nil
		}
		if ep.mirror {
			err = fmt.Errorf("mirror %s: %w", ep, err)
		} else if len(eps) > 1 {
			err = fmt.Errorf("registry %s: %w", ep, err)
		}
		if errors.Is(err, ErrRegistryConfig) || ctx.Err() != nil || len(eps) == 1 {
			return Image{}, fmt.Errorf("pull %s: %w", nr, err)
		}
		s.log.Warn("pull from endpoint failed, trying the next", "ref", nr.String(), "endpoint", ep.String(), "err", err)
		failed = append(failed, err)
	}
	return Image{}, fmt.Errorf("pull %s: %w", nr, failed)
}

// endpointErrors are the failures of every endpoint a pull tried.
type endpointErrors []error

func (e endpointErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("all %d endpoints failed: %s", len(e), strings.Join(msgs, "; "))
}

func (e endpointErrors) Unwrap() []error { return e }

// pullFrom pulls nr (r as parsed by go-containerregistry) from one endpoint.
func (s *Store) pullFrom(ctx context.Context, nr reference, r name.Reference, ep endpoint, auth *Auth) (Image, int64, error) {
	rref, opts, err := s.remote(ctx, r, ep, auth)
	if err != nil {
		return Image{}, 0, err
	}
	s.log.Info("pulling image", "ref", nr.String(), "endpoint", ep.String())
	desc, err := remote.Get(rref, opts...)
	if err != nil {
		return Image{}, 0, err
	}
	if nr.digest != "" && desc.Digest.String() != nr.digest {
		return Image{}, 0, fmt.Errorf("registry returned manifest %s", desc.Digest)
	}
	f := &remoteFetcher{repo: rref.Context(), opts: opts}
	c, err := resolve(ctx, f, desc.Descriptor, desc.Manifest, s.platform)
	if err != nil {
		return Image{}, 0, err
	}
	if nr.tag != "" {
		c.tags = []string{nr.String()}
	}
	c.digests = []string{nr.withDigest(desc.Digest.String())}

	w, err := s.newWork()
	if err != nil {
		return Image{}, 0, err
	}
	defer w.close()
	return s.ingest(ctx, w, c)
}

// remote decides how to reach r at endpoint ep: the go-containerregistry reference
// to use (ep's host, r's repository, tag or digest) and the remote options
// (transport, credentials, platform, context).
//
// Plain HTTP is allowed only to loopback hosts and to endpoints marked insecure; for
// any other host the transport refuses it, even where go-containerregistry would fall
// back to it. A mirror's requests go to its own scheme and API root. The credentials
// go to mirrors too, unless Auth.ServerAddress names another host.
func (s *Store) remote(ctx context.Context, r name.Reference, ep endpoint, auth *Auth) (name.Reference, []remote.Option, error) {
	var nopts []name.Option
	if ep.insecure || isLoopback(ep.host) || ep.scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	target := r.String()
	if ep.mirror {
		target = ep.host + "/" + r.Context().RepositoryStr() + sep(r) + r.Identifier()
	}
	rref, err := name.ParseReference(target, nopts...)
	if err != nil {
		return nil, nil, err
	}
	tr, err := ep.transport(s.transport)
	if err != nil {
		return nil, nil, configError(s.registries.path, err)
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(tr),
		remote.WithAuth(authenticator(auth, ep.host)),
		remote.WithPlatform(s.platform),
		remote.WithUserAgent("nodekit-cri"),
	}
	return rref, opts, nil
}

// sep is "@" before a digest, ":" before a tag.
func sep(r name.Reference) string {
	if _, ok := r.(name.Digest); ok {
		return "@"
	}
	return ":"
}

// isLoopback reports whether a registry host[:port] is on the loopback interface.
func isLoopback(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// httpsOnly refuses plain-HTTP requests to hosts not allowed to use it. When rewrite
// is a mirror, requests to its host are sent with its scheme and API root.
type httpsOnly struct {
	base      http.RoundTripper
	allowHTTP func(host string) bool
	rewrite   endpoint
}

func (t *httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if ep := t.rewrite; ep.scheme != "" && req.URL.Host == ep.host {
		u := *req.URL
		u.Scheme = ep.scheme
		if p := u.Path; p == "/v2" || strings.HasPrefix(p, "/v2/") {
			u.Path = ep.apiRoot + strings.TrimPrefix(p, "/v2")
			u.RawPath = ""
		}
		if u != *req.URL {
			req = req.Clone(req.Context())
			req.URL = &u
		}
	}
	if req.URL.Scheme == "http" && !t.allowHTTP(req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("plain HTTP to registry %s refused (only loopback registries and those marked insecure may use it)", req.URL.Host)
	}
	return t.base.RoundTrip(req)
}

// dockerHub names the registry of docker.io references under all its aliases.
var dockerHub = map[string]bool{"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true}

// authenticator turns CRI credentials into a ggcr authenticator for registry host.
func authenticator(a *Auth, host string) authn.Authenticator {
	if a == nil || *a == (Auth{ServerAddress: a.ServerAddress}) {
		return authn.Anonymous
	}
	if a.ServerAddress != "" {
		server := a.ServerAddress
		if u, err := url.Parse(server); err == nil && u.Host != "" {
			server = u.Host
		}
		if server != host && !(dockerHub[server] && dockerHub[host]) {
			return authn.Anonymous
		}
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		Auth:          a.Auth,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	})
}

// remoteFetcher reads blobs from a registry repository.
type remoteFetcher struct {
	repo name.Repository
	opts []remote.Option
}

func (f *remoteFetcher) withCtx(ctx context.Context) []remote.Option {
	return append(append([]remote.Option{}, f.opts...), remote.WithContext(ctx))
}

func (f *remoteFetcher) manifest(ctx context.Context, d v1.Hash) ([]byte, error) {
	desc, err := remote.Get(f.repo.Digest(d.String()), f.withCtx(ctx)...)
	if err != nil {
		return nil, err
	}
	return desc.Manifest, nil
}

func (f *remoteFetcher) blob(ctx context.Context, d v1.Hash) ([]byte, error) {
	rc, err := f.open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readSmall(rc, d)
}

func (f *remoteFetcher) open(ctx context.Context, d v1.Hash) (io.ReadCloser, error) {
	l, err := remote.Layer(f.repo.Digest(d.String()), f.withCtx(ctx)...)
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}
