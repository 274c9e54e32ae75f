package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
)

// StreamOptions are the streams of an exec or attach session (the query
// parameters input, output, error and tty set to 1).
type StreamOptions struct {
	Stdin, Stdout, Stderr, TTY bool
}

// StreamingProvider is a Provider that runs commands in containers, attaches
// to them and forwards ports into pods; the server then serves /exec, /attach,
// /portForward and /run on the main port and the local socket.
//
// As the kubelet, the server does not stream itself: GetExec, GetAttach and
// GetPortForward ask the container runtime to prepare a session (CRI Exec,
// Attach, PortForward) and return the URL of its streaming server, to which
// the client's upgraded connection (SPDY or WebSocket) is proxied. A uid that
// is not empty must be the pod's. An error wrapping ErrNotFound answers 404.
type StreamingProvider interface {
	GetExec(ctx context.Context, namespace, pod string, uid types.UID, container string, cmd []string, o StreamOptions) (*url.URL, error)
	GetAttach(ctx context.Context, namespace, pod string, uid types.UID, container string, o StreamOptions) (*url.URL, error)
	GetPortForward(ctx context.Context, namespace, pod string, uid types.UID, ports []int32) (*url.URL, error)
	// RunInContainer runs cmd in the container to its end and returns what it
	// wrote (standard output, then standard error).
	RunInContainer(ctx context.Context, namespace, pod string, uid types.UID, container string, cmd []string) ([]byte, error)
}

// streamingRoutes adds the streaming endpoints to mux, with and without the
// pod's UID in the path, for GET and POST, as the kubelet's.
func (s *Server) streamingRoutes(mux *http.ServeMux) {
	if _, ok := s.o.Provider.(StreamingProvider); !ok {
		return
	}
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{container}", s.serveExec)
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{uid}/{container}", s.serveExec)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{container}", s.serveAttach)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{uid}/{container}", s.serveAttach)
		mux.HandleFunc(m+" /portForward/{namespace}/{pod}", s.servePortForward)
		mux.HandleFunc(m+" /portForward/{namespace}/{pod}/{uid}", s.servePortForward)
	}
	mux.HandleFunc("POST /run/{namespace}/{pod}/{container}", s.serveRun)
	mux.HandleFunc("POST /run/{namespace}/{pod}/{uid}/{container}", s.serveRun)
}

// streamOptions reads the streams asked for; a TTY has no separate stderr.
func streamOptions(q url.Values) (StreamOptions, error) {
	o := StreamOptions{
		Stdin:  q.Get(v1.ExecStdinParam) == "1",
		Stdout: q.Get(v1.ExecStdoutParam) == "1",
		Stderr: q.Get(v1.ExecStderrParam) == "1",
		TTY:    q.Get(v1.ExecTTYParam) == "1",
	}
	if o.TTY {
		o.Stderr = false
	}
	if !o.Stdin && !o.Stdout && !o.Stderr {
		return o, errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	return o, nil
}

func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	o, err := streamOptions(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	cmd := r.URL.Query()[v1.ExecCommandParam]
	if len(cmd) == 0 {
		writeError(w, http.StatusBadRequest, "exec: no command (query parameter command)")
		return
	}
	u, err := s.o.Provider.(StreamingProvider).GetExec(r.Context(), r.PathValue("namespace"), r.PathValue("pod"),
		types.UID(r.PathValue("uid")), r.PathValue("container"), cmd, o)
	if err != nil {
		s.streamError(w, "exec", err)
		return
	}
	s.proxyStream(w, r, u)
}

func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	o, err := streamOptions(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	u, err := s.o.Provider.(StreamingProvider).GetAttach(r.Context(), r.PathValue("namespace"), r.PathValue("pod"),
		types.UID(r.PathValue("uid")), r.PathValue("container"), o)
	if err != nil {
		s.streamError(w, "attach", err)
		return
	}
	s.proxyStream(w, r, u)
}

func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	// A WebSocket client names its ports in the query (port=80,443); a SPDY
	// client names one in each stream's headers, so none here.
	o, err := portforward.NewV4Options(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	u, err := s.o.Provider.(StreamingProvider).GetPortForward(r.Context(), r.PathValue("namespace"), r.PathValue("pod"),
		types.UID(r.PathValue("uid")), o.Ports)
	if err != nil {
		s.streamError(w, "port-forward", err)
		return
	}
	s.proxyStream(w, r, u)
}

// serveRun runs a command to its end (the kubelet's /run: the command is the
// query parameter cmd split at spaces) and answers with its output.
func (s *Server) serveRun(w http.ResponseWriter, r *http.Request) {
	cmd := strings.Split(r.URL.Query().Get("cmd"), " ")
	out, err := s.o.Provider.(StreamingProvider).RunInContainer(r.Context(), r.PathValue("namespace"), r.PathValue("pod"),
		types.UID(r.PathValue("uid")), r.PathValue("container"), cmd)
	if err != nil {
		if isNotFound(err) {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	// The kubelet labels the raw output JSON; so does this, for its clients.
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(out); err != nil {
		s.log.Debug("write run output", "err", err)
	}
}

func isNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrNotExist)
}

func (s *Server) streamError(w http.ResponseWriter, what string, err error) {
	if isNotFound(err) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	s.log.Warn("kubelet API: "+what, "err", err)
	writeError(w, http.StatusInternalServerError, fmt.Sprintf("%s: %v", what, err))
}

// proxyStream proxies the upgraded connection to the runtime's streaming
// server at u, as the kubelet does (an upgrade is required). The hijacked
// client connection is closed when the server shuts down: net/http leaves
// hijacked connections alone.
func (s *Server) proxyStream(w http.ResponseWriter, r *http.Request, u *url.URL) {
	h := proxy.NewUpgradeAwareHandler(u, nil, false, true, streamResponder{s})
	h.ServeHTTP(&closingHijacker{ResponseWriter: w, ctx: r.Context()}, r)
}

// streamResponder answers a proxying error: 400 for a request that is not an
// upgrade, else 500 (the kubelet answers 500 to both).
type streamResponder struct{ s *Server }

func (p streamResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code == http.StatusBadRequest {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p.s.log.Warn("kubelet API: proxying a stream", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, err.Error())
}

// closingHijacker closes the connection it hijacks once ctx ends.
type closingHijacker struct {
	http.ResponseWriter
	ctx context.Context
}

func (w *closingHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		context.AfterFunc(w.ctx, func() { conn.Close() })
	}
	return conn, rw, err
}

func (w *closingHijacker) Unwrap() http.ResponseWriter { return w.ResponseWriter }
