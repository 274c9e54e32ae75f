package probes

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// maxBodyLength caps how much of a response body an HTTP probe reads.
const maxBodyLength = 10 << 10

// maxRedirects is how many same-host redirects an HTTP probe follows.
const maxRedirects = 10

// httpProber runs HTTP GET probes. Its transport is shared by all probes; it
// keeps no connections open and uses no proxy.
type httpProber struct {
	transport *http.Transport
	log       *slog.Logger
}

func newHTTPProber(log *slog.Logger) *httpProber {
	return &httpProber{
		log: log,
		transport: &http.Transport{
			// Probes do not verify the container's certificate.
			TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet
			DisableKeepAlives:  true,
			DisableCompression: true,
			Proxy:              nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				// The client's timeout bounds the dial.
				return dialProbe(ctx, network, addr, 0)
			},
		},
	}
}

// httpRequestFor builds the URL and headers of an httpGet probe: scheme HTTP
// or HTTPS, host defaulting to the pod IP, port by number or by container
// port name, the path as given.
func httpRequestFor(g *v1.HTTPGetAction, c *v1.Container, podIP string) (*url.URL, http.Header, error) {
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := g.Host
	if host == "" {
		host = podIP
	}
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(g.Path)
	if err != nil {
		// As the kubelet: a path that does not parse is passed along as is.
		u = &url.URL{Path: g.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	hdr := http.Header{}
	for _, h := range g.HTTPHeaders {
		hdr.Add(h.Name, h.Value)
	}
	return u, hdr, nil
}

// probe GETs u: a 2xx answer is success, a 3xx answer (a redirect to another
// host, which is not followed) a warning, anything else or no answer within
// timeout a failure.
func (p *httpProber) probe(ctx context.Context, u *url.URL, hdr http.Header, userAgent string, timeout time.Duration) (outcome, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return outcomeFailure, err.Error(), nil
	}
	headers := hdr.Clone()
	if headers == nil {
		headers = http.Header{}
	}
	if _, ok := headers["User-Agent"]; !ok {
		headers.Set("User-Agent", userAgent)
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		headers.Del("Accept")
	}
	req.Header = headers
	req.Host = headers.Get("Host")

	client := &http.Client{Timeout: timeout, Transport: p.transport, CheckRedirect: sameHostRedirects}
	res, err := client.Do(req)
	if err != nil {
		// Errors are failures, so that timeouts count.
		return outcomeFailure, err.Error(), nil
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBodyLength+1))
	if err != nil {
		return outcomeFailure, "", fmt.Errorf("http probe %s: read body: %w", u.Redacted(), err)
	}
	if len(body) > maxBodyLength {
		p.log.Debug("http probe: response body truncated", "url", u.Redacted(), "limit", maxBodyLength)
		body = body[:maxBodyLength]
	}
	switch {
	case res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusMultipleChoices:
		return outcomeSuccess, string(body), nil
	case res.StatusCode >= http.StatusMultipleChoices && res.StatusCode < http.StatusBadRequest:
		return outcomeWarning, fmt.Sprintf("Probe terminated redirects, Response body: %s", body), nil
	default:
		return outcomeFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
	}
}

// sameHostRedirects follows redirects to the probed host only (any port), as
// the kubelet does; a redirect elsewhere ends the request with its 3xx answer.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}
