package image

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	toml "github.com/pelletier/go-toml/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrRegistryConfig is wrapped by the errors of an invalid registry configuration
// file. Such errors also carry the gRPC code FailedPrecondition.
var ErrRegistryConfig = errors.New("invalid registry configuration")

// endpoint is one place a registry's images may be pulled from: a mirror or the
// registry itself.
type endpoint struct {
	// host is host[:port], the registry name go-containerregistry is given.
	host string
	// scheme is "https" or "http". For the upstream registry it is "" (go-containerregistry
	// decides: HTTPS, with an HTTP fallback where plain HTTP is allowed).
	scheme string
	// apiRoot replaces the "/v2" of every registry API path ("/v2" when the URL has no
	// path).
	apiRoot string
	// insecure allows plain HTTP and skips TLS verification; skipVerify only the latter.
	insecure, skipVerify bool
	// ca is a PEM file of extra CAs trusted for this endpoint.
	ca string
	// mirror is false for the registry itself.
	mirror bool
	// entry names the configuration entry, for errors: `registry."docker.io".mirrors[1]`.
	entry string
}

// String is the endpoint's URL as configured (or the upstream host).
func (ep endpoint) String() string {
	if ep.scheme == "" {
		return ep.host
	}
	root := strings.TrimSuffix(ep.apiRoot, "/v2")
	return ep.scheme + "://" + ep.host + root
}

// registryConfig is the parsed registry configuration: per registry host, how to
// reach it.
type registryConfig struct {
	path  string
	hosts map[string]hostConfig
}

// hostConfig is one [registry."host"] entry.
type hostConfig struct {
	mirrors     []endpoint
	mirrorsOnly bool
	upstream    endpoint
}

// The TOML shape of the file. Mirrors are strings or inline tables, decoded by hand.
type (
	fileConfig struct {
		Registry map[string]fileRegistry `toml:"registry"`
	}
	fileRegistry struct {
		Mirrors     []any  `toml:"mirrors"`
		MirrorsOnly bool   `toml:"mirrors_only"`
		Insecure    bool   `toml:"insecure"`
		SkipVerify  bool   `toml:"skip_verify"`
		CA          string `toml:"ca"`
	}
)

// mirrorKeys are the keys of a mirror given as an inline table.
var mirrorKeys = []string{"url", "insecure", "skip_verify", "ca", "override_path"}

// parseRegistryConfig parses the registry configuration file content b; file names the
// file in errors.
func parseRegistryConfig(file string, b []byte) (*registryConfig, error) {
	var fc fileConfig
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return nil, configError(file, tomlError(file, err))
	}
	rc := &registryConfig{path: file, hosts: map[string]hostConfig{}}
	keys := make([]string, 0, len(fc.Registry))
	for k := range fc.Registry {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		fr := fc.Registry[key]
		entry := fmt.Sprintf("registry.%q", key)
		host, err := registryHost(key)
		if err != nil {
			return nil, configError(file, fmt.Errorf("%s: %w", entry, err))
		}
		if _, dup := rc.hosts[host]; dup {
			return nil, configError(file, fmt.Errorf("%s: registry %s is configured twice", entry, host))
		}
		hc := hostConfig{
			mirrorsOnly: fr.MirrorsOnly,
			upstream: endpoint{host: host, apiRoot: "/v2", insecure: fr.Insecure,
				skipVerify: fr.SkipVerify, ca: fr.CA, entry: entry},
		}
		for i, m := range fr.Mirrors {
			ep, err := parseMirror(m)
			if err != nil {
				return nil, configError(file, fmt.Errorf("%s: mirrors[%d]: %w", entry, i, err))
			}
			ep.entry = fmt.Sprintf("%s.mirrors[%d]", entry, i)
			hc.mirrors = append(hc.mirrors, ep)
		}
		if hc.mirrorsOnly && len(hc.mirrors) == 0 {
			return nil, configError(file, fmt.Errorf("%s: mirrors_only is set but no mirrors are listed", entry))
		}
		rc.hosts[host] = hc
	}
	return rc, nil
}

// registryHost validates a [registry."..."] key and normalizes docker.io's aliases.
func registryHost(key string) (string, error) {
	if strings.Contains(key, "://") || strings.Contains(key, "/") {
		return "", errors.New("the key must be a registry host[:port], without scheme or path")
	}
	reg, err := name.NewRegistry(key, name.StrictValidation)
	if err != nil {
		return "", err
	}
	if h := reg.RegistryStr(); !dockerHub[h] {
		return h, nil
	}
	return "docker.io", nil
}

// parseMirror reads one element of a mirrors list: a URL string or an inline table
// {url = "...", insecure = ..., skip_verify = ..., ca = "...", override_path = ...}.
func parseMirror(v any) (endpoint, error) {
	var raw string
	var override bool
	ep := endpoint{mirror: true}
	switch m := v.(type) {
	case string:
		raw = m
	case map[string]any:
		for k, val := range m {
			if !slices.Contains(mirrorKeys, k) {
				return ep, fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(mirrorKeys, ", "))
			}
			var ok bool
			switch k {
			case "url":
				raw, ok = val.(string)
			case "ca":
				ep.ca, ok = val.(string)
			case "insecure":
				ep.insecure, ok = val.(bool)
			case "skip_verify":
				ep.skipVerify, ok = val.(bool)
			case "override_path":
				override, ok = val.(bool)
			}
			if !ok {
				return ep, fmt.Errorf("%s: wrong type %T", k, val)
			}
		}
		if raw == "" {
			return ep, errors.New(`missing "url"`)
		}
	default:
		return ep, fmt.Errorf("want a URL string or an inline table with a url, got %T", v)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ep, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return ep, fmt.Errorf("url %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return ep, fmt.Errorf("url %q: want scheme://host[:port][/path] only", raw)
	}
	if _, err := name.NewRegistry(u.Host, name.StrictValidation); err != nil {
		return ep, fmt.Errorf("url %q: %w", raw, err)
	}
	ep.scheme, ep.host = u.Scheme, u.Host
	if ep.scheme == "http" && !ep.insecure && !isLoopback(ep.host) {
		return ep, fmt.Errorf("url %q: plain HTTP is only allowed for loopback hosts or mirrors marked insecure = true", raw)
	}
	p := path.Clean("/" + u.Path)
	switch {
	case override:
		ep.apiRoot = strings.TrimSuffix(p, "/")
	case p == "/":
		ep.apiRoot = "/v2"
	case strings.HasSuffix(p, "/v2"):
		ep.apiRoot = p
	default:
		ep.apiRoot = p + "/v2"
	}
	return ep, nil
}

// tomlError adds the file name and the line:column of the first decode problem.
func tomlError(file string, err error) error {
	var de *toml.DecodeError
	var sm *toml.StrictMissingError
	switch {
	case errors.As(err, &sm) && len(sm.Errors) > 0:
		var msgs []string
		for i := range sm.Errors {
			e := &sm.Errors[i]
			row, col := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d:%d: unknown key %q", file, row, col, strings.Join(e.Key(), ".")))
		}
		return errors.New(strings.Join(msgs, "; "))
	case errors.As(err, &de):
		row, col := de.Position()
		return fmt.Errorf("%s:%d:%d: %w", file, row, col, err)
	}
	return fmt.Errorf("%s: %w", file, err)
}

// configFailure is an invalid registry configuration: FailedPrecondition for gRPC.
type configFailure struct {
	file string
	err  error
}

func configError(file string, err error) error { return &configFailure{file: file, err: err} }

func (e *configFailure) Error() string {
	msg := e.err.Error()
	if !strings.HasPrefix(msg, e.file) {
		msg = e.file + ": " + msg
	}
	return "registry configuration " + msg
}

func (e *configFailure) Unwrap() []error { return []error{ErrRegistryConfig, e.err} }

// GRPCStatus lets a gRPC server report the error as FailedPrecondition: the node's
// configuration, not the request, is at fault.
func (e *configFailure) GRPCStatus() *status.Status {
	return status.New(codes.FailedPrecondition, e.Error())
}

// registryFile reads the registry configuration file at every pull (it is small) and
// parses it again when its content changed, so that edits apply to the next pull.
type registryFile struct {
	path string

	mu   sync.Mutex
	data []byte
	cfg  *registryConfig
	err  error
}

// load returns the current configuration; nil (no mirrors) when the path is empty or
// the file does not exist.
func (r *registryFile) load() (*registryConfig, error) {
	if r == nil || r.path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, configError(r.path, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.data == nil || !bytes.Equal(b, r.data) {
		r.cfg, r.err = parseRegistryConfig(r.path, b)
		r.data = b
	}
	return r.cfg, r.err
}

// endpoints lists where to pull a reference of registry host from, in order: its
// mirrors, then (unless mirrors_only) the registry itself.
func (rc *registryConfig) endpoints(host string) []endpoint {
	key := host
	if dockerHub[key] {
		key = "docker.io"
	}
	up := endpoint{host: host, apiRoot: "/v2"}
	if rc == nil {
		return []endpoint{up}
	}
	hc, ok := rc.hosts[key]
	if !ok {
		return []endpoint{up}
	}
	eps := slices.Clone(hc.mirrors)
	if !hc.mirrorsOnly {
		u := hc.upstream
		u.host = host
		eps = append(eps, u)
	}
	return eps
}

// transport is the HTTP transport for pulls from ep: TLS options applied to base,
// requests to ep's host rewritten to its scheme and API root, and plain HTTP refused
// for any host that is neither loopback nor ep itself marked insecure.
func (ep endpoint) transport(base http.RoundTripper) (http.RoundTripper, error) {
	rt := base
	if ep.skipVerify || ep.insecure || ep.ca != "" {
		ht, ok := base.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("%s: TLS options need an *http.Transport, the store has a %T", ep.entry, base)
		}
		ht = ht.Clone()
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if ht.TLSClientConfig != nil {
			tc = ht.TLSClientConfig.Clone()
		}
		if ep.skipVerify || ep.insecure {
			tc.InsecureSkipVerify = true
		}
		if ep.ca != "" {
			pem, err := os.ReadFile(ep.ca)
			if err != nil {
				return nil, fmt.Errorf("%s: ca: %w", ep.entry, err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s: ca %s: no PEM certificate in it", ep.entry, ep.ca)
			}
			tc.RootCAs = pool
		}
		ht.TLSClientConfig = tc
		rt = ht
	}
	allow := func(host string) bool {
		return isLoopback(host) || (ep.insecure && host == ep.host)
	}
	return &httpsOnly{base: rt, allowHTTP: allow, rewrite: ep}, nil
}
