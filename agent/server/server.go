package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"
)

// The kubelet's default ports, for flags and configuration defaults.
const (
	DefaultPort         = 10250
	DefaultReadOnlyPort = 10255
	DefaultHealthzPort  = 10248
)

// ErrNotFound is what a Provider wraps when a pod, container or log does not
// exist; the API answers 404.
var ErrNotFound = errors.New("not found")

// Provider is what the API serves; the agent implements it.
type Provider interface {
	// GetPods returns the desired pods with their current statuses.
	GetPods() []*v1.Pod
	// GetRunningPods returns the pods the runtime runs, as the kubelet's /runningpods/.
	GetRunningPods(ctx context.Context) ([]*v1.Pod, error)
	// GetContainerLogPath returns the CRI log file of a container's current
	// instance, or of its previous one when previous is set. An error wrapping
	// ErrNotFound or fs.ErrNotExist is answered with 404.
	GetContainerLogPath(namespace, pod, container string, previous bool) (string, error)
	// Summary returns the Summary API figures of the node and its pods.
	Summary(ctx context.Context) (*statsapi.Summary, error)
}

// Options configures a Server. Ports: Port and HealthzPort 0 pick a free port
// (tests; the daemon passes DefaultPort and DefaultHealthzPort), a negative
// port turns that listener off; ReadOnlyPort is off unless > 0.
type Options struct {
	Provider Provider

	Address      string // main API and read-only port; "" means 0.0.0.0
	Port         int
	ReadOnlyPort int

	HealthzAddress string // "" means 127.0.0.1
	HealthzPort    int

	// TLSCertFile and TLSKeyFile are the serving certificate and key; when both
	// are empty a self-signed pair is generated into CertDir (kubelet.crt,
	// kubelet.key) and reused while it is valid and names Hostname and NodeIPs.
	TLSCertFile, TLSKeyFile string
	CertDir                 string
	Hostname                string   // a SAN of the generated certificate; "" means os.Hostname()
	NodeIPs                 []net.IP // more SANs; 127.0.0.1 and ::1 are always included

	// AnonymousAuth lets requests without credentials in as system:anonymous
	// (group system:unauthenticated). ClientCAFile is a PEM bundle; client
	// certificates it signs authenticate as their common name, in the groups of
	// their organizations (x509 authentication, as the kubelet's).
	AnonymousAuth bool
	ClientCAFile  string
	// TokenAuthenticator, when set, authenticates bearer tokens (webhook
	// authentication: NewWebhookAuthenticator).
	TokenAuthenticator TokenAuthenticator
	// Authorizer, when set, authorizes every authenticated request on the main
	// port with the attributes of RequestAttributes (webhook authorization:
	// NewWebhookAuthorizer); nil allows them all (the kubelet's AlwaysAllow).
	Authorizer Authorizer
	// NodeName is the node's name in the authorization attributes; "" means
	// Hostname.
	NodeName string

	// LocalSocket is a unix socket serving the full API without TLS or
	// authentication, mode 0600; "" means none.
	LocalSocket string

	Metrics prometheus.Gatherer // /metrics; nil means prometheus.DefaultGatherer
	Healthz func() error        // nil means always healthy
	Logger  *slog.Logger
	Clock   clock.PassiveClock // certificate validity, sinceSeconds; nil means the real clock
}

// Addrs are the addresses a Server listens on; nil or "" where it does not.
type Addrs struct {
	Main, ReadOnly, Healthz net.Addr
	LocalSocket             string
}

// Server is the agent's HTTP API. New binds its listeners; Run serves them.
type Server struct {
	o         Options
	log       *slog.Logger
	clock     clock.PassiveClock
	tlsConfig *tls.Config
	clientCAs *x509.CertPool
	nodeName  string

	listeners []*listener
	addrs     Addrs

	closeOnce sync.Once
}

type listener struct {
	name    string
	ln      net.Listener
	handler http.Handler
	tls     bool
}

// New checks o, prepares the serving certificate and binds every listener, so
// an address in use or a bad certificate is reported before anything runs.
func New(o Options) (*Server, error) {
	if o.Provider == nil {
		return nil, errors.New("kubelet server: Options.Provider is nil")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Metrics == nil {
		o.Metrics = prometheus.DefaultGatherer
	}
	if o.Address == "" {
		o.Address = "0.0.0.0"
	}
	if o.HealthzAddress == "" {
		o.HealthzAddress = "127.0.0.1"
	}
	s := &Server{o: o, log: o.Logger, clock: o.Clock, nodeName: o.NodeName}
	if s.nodeName == "" {
		s.nodeName = o.Hostname
	}
	if s.nodeName == "" {
		s.nodeName, _ = os.Hostname()
	}

	if o.Port >= 0 {
		cert, err := servingCertificate(o, o.Clock.Now())
		if err != nil {
			return nil, fmt.Errorf("kubelet server: %w", err)
		}
		s.tlsConfig = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequestClientCert, // verified per request, so a bad certificate gets 401
		}
		if o.ClientCAFile != "" {
			pool, err := loadCAs(o.ClientCAFile)
			if err != nil {
				return nil, fmt.Errorf("kubelet server: %w", err)
			}
			s.clientCAs = pool
		}
	}

	err := s.bind()
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func loadCAs(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("client CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("client CA file %s: no PEM certificate", file)
	}
	return pool, nil
}

func (s *Server) bind() error {
	o := s.o
	full := s.apiHandler(true)
	if o.HealthzPort >= 0 {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", s.serveHealthz)
		if err := s.listenTCP("healthz", o.HealthzAddress, o.HealthzPort, mux, false, &s.addrs.Healthz); err != nil {
			return err
		}
	}
	if o.Port >= 0 {
		if err := s.listenTCP("main API", o.Address, o.Port, s.secured(full), true, &s.addrs.Main); err != nil {
			return err
		}
	}
	if o.ReadOnlyPort > 0 {
		if err := s.listenTCP("read-only API", o.Address, o.ReadOnlyPort, s.apiHandler(false), false, &s.addrs.ReadOnly); err != nil {
			return err
		}
	}
	if o.LocalSocket != "" {
		ln, err := listenUnix(o.LocalSocket)
		if err != nil {
			return fmt.Errorf("kubelet server: local socket: %w", err)
		}
		s.listeners = append(s.listeners, &listener{name: "local socket", ln: ln, handler: full})
		s.addrs.LocalSocket = o.LocalSocket
	}
	return nil
}

func (s *Server) listenTCP(name, host string, port int, h http.Handler, useTLS bool, addr *net.Addr) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("kubelet server: %s: %w", name, err)
	}
	s.listeners = append(s.listeners, &listener{name: name, ln: ln, handler: h, tls: useTLS})
	*addr = ln.Addr()
	return nil
}

// listenUnix binds path with mode 0600 from the first moment: the socket is
// bound under a temporary name, restricted, then renamed into place. A stale
// socket at path is replaced; any other file there is an error.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d", filepath.Base(path), os.Getpid()))
	_ = os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	return ln, nil
}

// Addrs returns where the Server listens (the ports the system picked for 0).
func (s *Server) Addrs() Addrs { return s.addrs }

// Run serves every listener until ctx ends, then shuts down: streaming
// requests (log follows) end with ctx, others get a few seconds to finish. It
// closes the listeners and removes the local socket. A listener failing ends
// Run with its error.
func (s *Server) Run(ctx context.Context) error {
	defer s.Close()
	errc := make(chan error, len(s.listeners))
	servers := make([]*http.Server, 0, len(s.listeners))
	for _, l := range s.listeners {
		srv := &http.Server{
			Handler:           l.handler,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       90 * time.Second,
			MaxHeaderBytes:    1 << 20,
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		ln := l.ln
		if l.tls {
			ln = tls.NewListener(ln, s.tlsConfig)
		}
		servers = append(servers, srv)
		s.log.Info("kubelet API listening", "listener", l.name, "address", l.ln.Addr().String())
		go func(name string) {
			err := srv.Serve(ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			} else if err != nil {
				err = fmt.Errorf("kubelet server: %s: %w", name, err)
			}
			errc <- err
		}(l.name)
	}

	var runErr error
	pending := len(servers)
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		pending--
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			srv.Close()
		}
	}
	for ; pending > 0; pending-- {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	return runErr
}

// Close closes the listeners and removes the local socket; Run does it on
// return. It is for a Server whose Run is never called.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		for _, l := range s.listeners {
			l.ln.Close()
		}
		if s.addrs.LocalSocket != "" {
			if err := os.Remove(s.addrs.LocalSocket); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("remove local socket", "path", s.addrs.LocalSocket, "err", err)
			}
		}
	})
	return nil
}

// apiHandler routes the API; the read-only set leaves out logs, running pods
// and streaming.
func (s *Server) apiHandler(full bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /pods", s.servePods)
	mux.HandleFunc("GET /stats/summary", s.serveSummary)
	mux.HandleFunc("POST /stats/summary", s.serveSummary)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.o.Metrics, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}))
	mux.HandleFunc("GET /metrics/resource", s.serveResourceMetrics)
	if full {
		if _, ok := s.o.Provider.(NodeProvider); ok {
			mux.HandleFunc("GET /node", s.serveNode)
		}
		if _, ok := s.o.Provider.(TimelineProvider); ok {
			mux.HandleFunc("GET /debug/pods/{namespace}/{name}/timeline", s.serveTimeline)
		}
		mux.HandleFunc("GET /runningpods/{$}", s.serveRunningPods)
		mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveContainerLogs)
		s.streamingRoutes(mux)
	}
	return mux
}

func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	if s.o.Healthz != nil {
		if err := s.o.Healthz(); err != nil {
			writeError(w, http.StatusInternalServerError, "healthz check failed: "+err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte("ok"))
}

func (s *Server) servePods(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, podList(s.o.Provider.GetPods()))
}

// NodeProvider is a Provider that also describes the node; the server then
// answers GET /node (nodekit's own endpoint, for `nodekit-kubelet get node`).
type NodeProvider interface {
	GetNode(ctx context.Context) (*v1.Node, error)
}

func (s *Server) serveNode(w http.ResponseWriter, r *http.Request) {
	n, err := s.o.Provider.(NodeProvider).GetNode(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "node: "+err.Error())
		return
	}
	s.writeJSON(w, n)
}

func (s *Server) serveRunningPods(w http.ResponseWriter, r *http.Request) {
	pods, err := s.o.Provider.GetRunningPods(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "running pods: "+err.Error())
		return
	}
	s.writeJSON(w, podList(pods))
}

// serveSummary answers the Summary API; with only_cpu_and_memory=true (what
// metrics-server asks for) only the CPU and memory figures, as the kubelet.
func (s *Server) serveSummary(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "stats summary: "+err.Error())
		return
	}
	sum, err := s.o.Provider.Summary(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "stats summary: "+err.Error())
		return
	}
	if v := r.Form["only_cpu_and_memory"]; len(v) == 1 && v[0] == "true" {
		sum = cpuAndMemoryOnly(sum)
	}
	s.writeJSON(w, sum)
}

// podList is the kubelet's encoding of a pod slice: a v1 PodList.
func podList(pods []*v1.Pod) *v1.PodList {
	l := &v1.PodList{Items: make([]v1.Pod, 0, len(pods))}
	l.Kind, l.APIVersion = "PodList", "v1"
	for _, p := range pods {
		if p != nil {
			l.Items = append(l.Items, *p)
		}
	}
	return l
}

func (s *Server) writeJSON(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(data); err != nil {
		s.log.Debug("write response", "err", err)
	}
}

// writeError answers with a plain-text message, as the kubelet does.
func writeError(w http.ResponseWriter, code int, msg string) {
	http.Error(w, msg, code)
}
