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
//     authentication): /healthz, /pods, /stats/summary and /metrics only;
//   - LocalSocket, a unix socket (mode 0600) serving the full API without TLS
//     or authentication, for local root tools such as `nodekit-kubelet get pods`
//     (see ListPods and PrintPods).
//
// Endpoints of the full API: /healthz, /pods (v1.PodList of the desired pods
// with their statuses), /runningpods/ (v1.PodList of what the runtime runs),
// /containerLogs/{namespace}/{pod}/{container} (tailLines, follow, timestamps,
// previous, limitBytes, sinceSeconds; CRI-format log files, stdout and stderr
// merged in file order, partial records joined into lines), /stats/summary
// (Summary API) and /metrics (Prometheus text of Options.Metrics).
//
// Authentication on the main port: a client certificate that verifies against
// ClientCAFile, or anonymous access when AnonymousAuth is set; any other request
// gets 401. There is no authorization step (no webhook, no RBAC): every
// authenticated client may use every endpoint.
package server
