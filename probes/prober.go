package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/nodekit-dev/nodekit/internal/containerid"
	"github.com/nodekit-dev/nodekit/internal/expansion"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// outcome is what one prober run says; warning counts as success (the
// kubelet records an event for it).
type outcome int

const (
	outcomeSuccess outcome = iota
	outcomeWarning
	outcomeFailure
)

// maxProbeRetries is how many times a probe that errors (as opposed to
// failing) is tried before its result is thrown away, as in the kubelet.
const maxProbeRetries = 3

// Upstream API defaults of a probe's fields.
const (
	defaultPeriodSeconds    = 10
	defaultTimeoutSeconds   = 1
	defaultSuccessThreshold = 1
	defaultFailureThreshold = 3
)

// probeSpec returns container c's probe of type t (nil if it has none).
func probeSpec(t ProbeType, c *v1.Container) *v1.Probe {
	switch t {
	case Liveness:
		return c.LivenessProbe
	case Readiness:
		return c.ReadinessProbe
	case Startup:
		return c.StartupProbe
	}
	return nil
}

// withDefaults returns a copy of p with the API defaults filled in for zero
// fields (static pods may skip defaulting).
func withDefaults(p *v1.Probe) *v1.Probe {
	q := p.DeepCopy()
	if q.PeriodSeconds <= 0 {
		q.PeriodSeconds = defaultPeriodSeconds
	}
	if q.TimeoutSeconds <= 0 {
		q.TimeoutSeconds = defaultTimeoutSeconds
	}
	if q.SuccessThreshold <= 0 {
		q.SuccessThreshold = defaultSuccessThreshold
	}
	if q.FailureThreshold <= 0 {
		q.FailureThreshold = defaultFailureThreshold
	}
	return q
}

// probeTarget is everything one probe run needs.
type probeTarget struct {
	probe       *v1.Probe // with defaults
	pod         *v1.Pod   // for events; nil: none
	probeType   ProbeType
	container   *v1.Container
	containerID string // bare CRI id
	podIP       string
}

// runProbe runs the probe, retrying when it errors, and says whether it
// passed. On error the result must be thrown away.
func (m *manager) runProbe(ctx context.Context, t probeTarget) (Result, string, error) {
	var (
		o   outcome
		out string
		err error
	)
	begin := m.clock.Now()
	for i := 0; i < maxProbeRetries; i++ {
		o, out, err = m.probeOnce(ctx, t)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return Unknown, out, ctx.Err() // stopped: nothing to report
	}
	took := m.clock.Since(begin)
	switch {
	case err != nil:
		m.event(t, Note{What: lower(t.probeType) + " probe errored", Err: err.Error(), Took: took, Reason: EventUnhealthy},
			"%s probe errored and resulted in unknown state: %s", t.probeType, err)
		return Unknown, out, err
	case o == outcomeFailure:
		m.event(t, Note{What: lower(t.probeType) + " probe failed", Took: took, Reason: EventUnhealthy},
			"%s probe failed: %s", t.probeType, out)
		return Failure, out, nil
	case o == outcomeWarning:
		m.log.Warn("probe warning", "container", t.container.Name, "containerID", t.containerID, "output", out)
		m.event(t, Note{What: lower(t.probeType) + " probe warning", Took: took, Reason: EventProbeWarning},
			"%s probe warning: %s", t.probeType, out)
		return Success, out, nil
	default:
		return Success, out, nil
	}
}

// event reports a Warning event about the probed container (n.Reason, the
// message from format), and n with it to the Journal.
func (m *manager) event(t probeTarget, n Note, format string, args ...any) {
	if t.pod == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if j := m.opts.Journal; j != nil {
		n.PodUID, n.Container, n.Type = t.pod.UID, t.container.Name, t.probeType
		n.Message, n.EventType = msg, v1.EventTypeWarning
		j.Note(n)
	}
	r := m.opts.Recorder
	if r == nil {
		return
	}
	path := fmt.Sprintf("spec.containers{%s}", t.container.Name)
	for _, c := range t.pod.Spec.InitContainers {
		if c.Name == t.container.Name {
			path = fmt.Sprintf("spec.initContainers{%s}", c.Name)
		}
	}
	r.Eventf(&v1.ObjectReference{
		Kind: "Pod", APIVersion: "v1",
		Namespace: t.pod.Namespace, Name: t.pod.Name, UID: t.pod.UID,
		ResourceVersion: t.pod.ResourceVersion, FieldPath: path,
	}, v1.EventTypeWarning, n.Reason, "%s", msg)
}

// lower is the probe type's name in lower case, for notes: "liveness".
func lower(t ProbeType) string { return strings.ToLower(t.String()) }

func (m *manager) probeOnce(ctx context.Context, t probeTarget) (outcome, string, error) {
	timeout := time.Duration(t.probe.TimeoutSeconds) * time.Second
	h := t.probe.ProbeHandler
	switch {
	case h.Exec != nil:
		if m.opts.Exec == nil {
			return outcomeFailure, "", errors.New("exec probe: no ExecRunner configured")
		}
		cmd := expandCommand(h.Exec.Command, t.container.Env)
		return execProbe(ctx, m.opts.Exec, t.containerID, cmd, timeout)
	case h.HTTPGet != nil:
		u, hdr, err := httpRequestFor(h.HTTPGet, t.container, t.podIP)
		if err != nil {
			return outcomeFailure, "", err
		}
		return m.http.probe(ctx, u, hdr, m.userAgent, timeout)
	case h.TCPSocket != nil:
		port, err := resolvePort(h.TCPSocket.Port, t.container)
		if err != nil {
			return outcomeFailure, "", err
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = t.podIP
		}
		return tcpProbe(ctx, net.JoinHostPort(host, strconv.Itoa(port)), timeout)
	case h.GRPC != nil:
		service := ""
		if h.GRPC.Service != nil {
			service = *h.GRPC.Service
		}
		addr := net.JoinHostPort(t.podIP, strconv.Itoa(int(h.GRPC.Port)))
		return grpcProbe(ctx, addr, service, m.userAgent, timeout)
	}
	return outcomeFailure, "", fmt.Errorf("container %q: probe has no handler", t.container.Name)
}

// resolvePort resolves a probe's port, by number or by the name of one of
// the container's ports.
func resolvePort(p intstr.IntOrString, c *v1.Container) (int, error) {
	port := -1
	switch p.Type {
	case intstr.Int:
		port = p.IntValue()
	case intstr.String:
		found := false
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				port, found = int(cp.ContainerPort), true
				break
			}
		}
		if !found {
			// As the kubelet: maybe a number stored as a string.
			n, err := strconv.Atoi(p.StrVal)
			if err != nil {
				return -1, fmt.Errorf("container %q: port %q not found", c.Name, p.StrVal)
			}
			port = n
		}
	default:
		return -1, fmt.Errorf("container %q: port %+v has no type", c.Name, p)
	}
	if port > 0 && port < 65536 {
		return port, nil
	}
	return port, fmt.Errorf("container %q: invalid port number %d", c.Name, port)
}

// expandCommand expands $(VAR) references in an exec probe's command with the
// literal values of the container's env entries, as the kubelet does (no
// downward API: an entry with valueFrom expands to ""). $$ escapes a $;
// unknown references are kept as they are.
func expandCommand(cmd []string, env []v1.EnvVar) []string {
	vars := map[string]string{}
	for _, e := range env {
		vars[e.Name] = e.Value
	}
	out := make([]string, len(cmd))
	for i, s := range cmd {
		out[i] = expansion.Expand(s, expansion.Map(vars))
	}
	return out
}

// criID returns the CRI id of a container ID in the kubelet's
// `<runtime>://<id>` format (or the id itself when there is no prefix).
func criID(id string) string { return containerid.CRIID(id) }

// defaultUserAgent is kube-probe/<major>.<minor> of the Kubernetes release
// whose API (k8s.io/api v0.X.Y = Kubernetes 1.X) the binary is built with.
func defaultUserAgent() string {
	minor := "37"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path != "k8s.io/api" {
				continue
			}
			if parts := strings.Split(strings.TrimPrefix(d.Version, "v"), "."); len(parts) >= 2 && parts[0] == "0" {
				if _, err := strconv.Atoi(parts[1]); err == nil {
					minor = parts[1]
				}
			}
		}
	}
	return "kube-probe/1." + minor
}
