// Package probes runs a pod's liveness, readiness and startup probes, as the
// kubelet's prober does.
//
// A Manager owns one worker goroutine per (pod, container, probe type). Each
// worker looks the container up in the pod's API status (a StatusProvider),
// probes it every periodSeconds once initialDelaySeconds have passed since it
// started, applies the success and failure thresholds, and publishes a result
// whenever it changes: on the Liveness, Readiness and Startup channels as an
// Update, and in a cache that UpdatePodStatus and Get read.
//
// The kubelet's rules are kept: readiness starts as Failure, liveness as
// Success and startup as Unknown for every new container; liveness and
// readiness do not run until the startup probe has succeeded; after a liveness
// or startup verdict the worker holds until the container is replaced (its ID
// changes); a container that is not running is not probed; the first probe of
// a worker started shortly after the manager is delayed by a random part of
// its period so that probes of adopted pods do not all fire at once.
//
// Four probers are built in: exec (the CRI's ExecSync with the probe's timeout;
// exit code 0 is success, a timeout is a failure), HTTP GET (2xx and 3xx are
// success, HTTPS without certificate verification, redirects followed only to
// the same host, body read capped at 10 KiB), TCP (a connection within the
// timeout) and gRPC (grpc.health.v1 Check; SERVING is success).
//
// Failed, errored and warning runs are reported as the kubelet's events
// (Unhealthy, ProbeWarning) and, with every change of a published result, to
// an optional Journal with the prober's output and how long the probe took:
// the agent's per-pod timeline. Passing runs are not: a readiness probe
// passing every 10 s would push a pod's history out of its bounded timeline
// within the hour, while its failures and recoveries are what explains a
// restart or a pod that is not ready.
//
// Time comes from an injected clock (k8s.io/utils/clock), so tests drive the
// workers with a fake clock and never sleep.
package probes
