package image

import (
	"context"
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
// (for tag references) and the repo digest of what ref resolved to.
func (s *Store) Pull(ctx context.Context, ref string, auth *Auth) (Image, error) {
	start := time.Now()
	nr, err := parseRef(ref)
	if err != nil {
		return Image{}, fmt.Errorf("pull: %w", err)
	}
	rref, opts, err := s.endpoint(ctx, ref, auth)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", nr, err)
	}
	s.log.Info("pulling image", "ref", nr.String())
	desc, err := remote.Get(rref, opts...)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", nr, err)
	}
	if nr.digest != "" && desc.Digest.String() != nr.digest {
		return Image{}, fmt.Errorf("pull %s: registry returned manifest %s", nr, desc.Digest)
	}
	f := &remoteFetcher{repo: rref.Context(), opts: opts}
	c, err := resolve(ctx, f, desc.Descriptor, desc.Manifest, s.platform)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", nr, err)
	}
	if nr.tag != "" {
		c.tags = []string{nr.String()}
	}
	c.digests = []string{nr.withDigest(desc.Digest.String())}

	w, err := s.newWork()
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", nr, err)
	}
	defer w.close()
	img, n, err := s.ingest(ctx, w, c)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", nr, err)
	}
	s.log.Info("pulled image", "ref", nr.String(), "id", img.ID, "layers", len(img.Layers),
		"bytes", n, "size", img.Size, "duration", time.Since(start).Round(time.Millisecond))
	return img, nil
}

// endpoint decides how to reach the registry holding ref: the ggcr reference to use and
// the remote options (transport, credentials, platform, context). Loopback registries
// are marked insecure so they are reached over plain HTTP; any other host must speak
// HTTPS (the transport refuses plain HTTP to it, even where ggcr would fall back to it).
//
// This is the one place that knows about endpoints: registry mirrors (a hosts.toml-like
// list per registry, tried in order, plain HTTP only for loopback or insecure-marked
// hosts) will plug in here by returning several endpoints.
func (s *Store) endpoint(ctx context.Context, ref string, auth *Auth) (name.Reference, []remote.Option, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, nil, err
	}
	host := r.Context().RegistryStr()
	insecure := isLoopback(host)
	if insecure {
		if r, err = name.ParseReference(ref, name.Insecure); err != nil {
			return nil, nil, err
		}
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(&httpsOnly{base: s.transport, allowHTTP: isLoopback}),
		remote.WithAuth(authenticator(auth, host)),
		remote.WithPlatform(s.platform),
		remote.WithUserAgent("nodekit-cri"),
	}
	return r, opts, nil
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

// httpsOnly refuses plain-HTTP requests to hosts not allowed to use it.
type httpsOnly struct {
	base      http.RoundTripper
	allowHTTP func(host string) bool
}

func (t *httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !t.allowHTTP(req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("plain HTTP to registry %s refused (only loopback registries may use it)", req.URL.Host)
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
