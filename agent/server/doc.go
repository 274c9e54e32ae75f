// Package server is the node agent's HTTP API, a smaller kubelet
// pkg/kubelet/server: the same paths and JSON, served from a Provider.
//
// A Server listens in up to four places:
//
//   - healthz (HealthzAddress:HealthzPort, default 127.0.0.1:10248, plain HTTP):
//     GET /healthz answers "ok", or 500 with the error of Options.Healthz;
//   - the main API (Address:Port, default 0.0.0.0:10250) over TLS, with a
//     self-signed serving certificate generated into CertDir (kubelet.crt,
//     kubelet.key) unless TLSCertFile/TLSKeyFile are given;
//   - the read-only port (ReadOnlyPort, off unless > 0, plain HTTP, no
//     authentication): /healthz, /pods, /stats/summary, /metrics and
//     /metrics/resource only;
//   - LocalSocket, a unix socket (mode 0600) serving the full API without TLS
//     or authentication, for local root tools such as `nodekit-kubelet get pods`
//     (see ListPods, and package agent/cli, the command line that reads it).
//
// Endpoints of the full API: /healthz, /pods (v1.PodList of the desired pods
// with their statuses), /runningpods/ (v1.PodList of what the runtime runs),
// /containerLogs/{namespace}/{pod}/{container} (tailLines, follow, timestamps,
// previous, limitBytes, sinceSeconds; CRI-format log files, stdout and stderr
// merged in file order, partial records joined into lines), /stats/summary
// (Summary API, GET or POST; only_cpu_and_memory=true gives what
// metrics-server reads), /metrics (Prometheus text of Options.Metrics) and
// /metrics/resource (the kubelet's resource metrics from the Summary: CPU and
// working set of the node, pods and containers, container start times).
//
// With a TimelineProvider, also /debug/pods/{namespace}/{name}/timeline: the
// JSON of the pod's timeline (agent/timeline), what happened to it and why;
// GetTimeline asks for it on the local socket.
//
// With a StreamingProvider, also /exec/{namespace}/{pod}/{container} and
// /attach/... (GET or POST; command repeated, input, output, error, tty),
// /portForward/{namespace}/{pod} and /run/{namespace}/{pod}/{container}
// (POST, cmd), each also with the pod's UID before the container: the
// runtime prepares the session (CRI Exec, Attach, PortForward) and the
// client's upgraded connection (SPDY or WebSocket) is proxied to the URL of
// its streaming server, as the kubelet does.
//
// Authentication on the main port, as the kubelet's: a client certificate that
// verifies against ClientCAFile (user: its common name, groups: its
// organizations), else a bearer token that Options.TokenAuthenticator accepts
// (webhook authentication: NewWebhookAuthenticator, TokenReviews in the API
// server, answers cached for 2 minutes), else anonymous (system:anonymous)
// when AnonymousAuth is set; a certificate or token presented and refused, or
// none without AnonymousAuth, gets 401. Authorization: with Options.Authorizer
// (webhook authorization: NewWebhookAuthorizer, SubjectAccessReviews, allowed
// answers cached 5 minutes, refused ones 30 seconds) each request is checked
// as a request on the node object with the verb of its method and the
// subresources of its path (RequestAttributes: stats, metrics, log, pods,
// healthz, ..., proxy for the rest); refused, it gets 403 with the kubelet's
// message, Forbidden (user=..., verb=..., resource=nodes, subresource(s)=[...]).
// Without an Authorizer every authenticated request is allowed (the kubelet's
// AlwaysAllow).
package server
