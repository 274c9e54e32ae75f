package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	v1 "k8s.io/api/core/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// client asks the agent serving a local socket.
type client struct {
	socket string
	http   *http.Client
}

func newClient(socket string) *client {
	return &client{socket: socket, http: &http.Client{Transport: &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return dialUnix(ctx, socket) },
		DisableKeepAlives: true,
	}}}
}

func dialUnix(ctx context.Context, socket string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", socket)
}

func (c *client) pods(ctx context.Context) (*v1.PodList, error) {
	var l v1.PodList
	if err := c.getJSON(ctx, "/pods", &l); err != nil {
		return nil, err
	}
	return &l, nil
}

func (c *client) node(ctx context.Context) (*v1.Node, error) {
	var n v1.Node
	if err := c.getJSON(ctx, "/node", &n); err != nil {
		return nil, err
	}
	return &n, nil
}

func (c *client) summary(ctx context.Context) (*statsapi.Summary, error) {
	var s statsapi.Summary
	if err := c.getJSON(ctx, "/stats/summary?only_cpu_and_memory=true", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// getJSON GETs path and decodes the JSON answer into out.
func (c *client) getJSON(ctx context.Context, path string, out any) error {
	body, err := c.open(ctx, path)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// open GETs path and returns the body of a 200 answer; any other answer is an
// *apiError with the agent's message.
func (c *client) open(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.explain(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, newAPIError(resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return resp.Body, nil
}

// explain turns a failure to reach the socket into what the user can do
// about it.
func (c *client) explain(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	hint := fmt.Sprintf("is nodekit-kubelet running with --root-dir %s?", filepath.Dir(c.socket))
	switch {
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return &socketError{err: err, msg: fmt.Sprintf("permission denied on %s: the agent's local API is for root only (run as root, e.g. with sudo)", c.socket)}
	case errors.Is(err, syscall.ENOENT):
		msg := fmt.Sprintf("no agent at %s: %s", c.socket, hint)
		if os.Geteuid() != 0 {
			msg += " (and run as root: its local API is for root only)"
		}
		return &socketError{err: err, msg: msg}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &socketError{err: err, msg: fmt.Sprintf("the agent at %s is not running (connection refused): %s", c.socket, hint)}
	}
	return fmt.Errorf("agent at %s: %w", c.socket, err)
}

// socketError says why the agent's socket could not be used.
type socketError struct {
	err error
	msg string
}

func (e *socketError) Error() string { return e.msg }
func (e *socketError) Unwrap() error { return e.err }

// apiError is an error answer of the agent, or an error the CLI reports as
// one (a pod that does not exist), printed as kubectl prints an API error:
// Error from server (Reason): message.
type apiError struct {
	Code    int
	Reason  string // NotFound, BadRequest, ...
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("Error from server (%s): %s", e.Reason, e.Message)
}

func newAPIError(code int, msg string) *apiError {
	reasons := map[int]string{
		http.StatusBadRequest:          "BadRequest",
		http.StatusUnauthorized:        "Unauthorized",
		http.StatusForbidden:           "Forbidden",
		http.StatusNotFound:            "NotFound",
		http.StatusConflict:            "Conflict",
		http.StatusUnprocessableEntity: "Invalid",
		http.StatusInternalServerError: "InternalError",
		http.StatusServiceUnavailable:  "ServiceUnavailable",
	}
	reason, ok := reasons[code]
	if !ok {
		reason = strings.ReplaceAll(http.StatusText(code), " ", "")
	}
	if msg == "" {
		msg = http.StatusText(code)
	}
	return &apiError{Code: code, Reason: reason, Message: msg}
}

// podNotFound is kubectl's error for a pod that does not exist.
func podNotFound(name string) error {
	return &apiError{Code: http.StatusNotFound, Reason: "NotFound", Message: fmt.Sprintf("pods %q not found", name)}
}

func isNotFound(err error) bool {
	var e *apiError
	return errors.As(err, &e) && e.Code == http.StatusNotFound
}
