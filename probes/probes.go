package probes

import (
	"context"
	"log/slog"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/clock"
)

// ExecRunner runs a command in a container and waits for it, at most timeout.
// A non-zero exit is reported as an error with an ExitStatus() int method
// (k8s.io/utils/exec.ExitError); a timeout as an error wrapping
// context.DeadlineExceeded, a gRPC DeadlineExceeded status, or
// k8s.io/cri-client/pkg.ErrCommandTimedOut (recognized by its text, "command
// timed out", so that probes does not import cri-client).
// internalapi.RuntimeService satisfies it.
type ExecRunner interface {
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error)
}

// StatusProvider gives the latest API status of a pod: its IP and, per
// container, the container ID (`<runtime>://<id>`), state and Started flag.
// agent/status.Manager satisfies it.
type StatusProvider interface {
	GetPodStatus(uid types.UID) (v1.PodStatus, bool)
}

// Result is the outcome of a probe as the manager publishes it.
type Result int

// Probe results. The zero value is Unknown.
const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	default:
		return "Unknown"
	}
}

// metricLabel is the kubelet's value of the result label of prober_probe_total.
func (r Result) metricLabel() string {
	switch r {
	case Success:
		return "successful"
	case Failure:
		return "failed"
	default:
		return "unknown"
	}
}

// ProbeType is liveness, readiness or startup.
type ProbeType int

// Probe types.
const (
	Liveness ProbeType = iota
	Readiness
	Startup
)

// String gives the kubelet's name of the probe type, also the value of the
// probe_type metric label.
func (t ProbeType) String() string {
	switch t {
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	case Startup:
		return "Startup"
	default:
		return "Unknown"
	}
}

// Update tells that a probe's published result for a container changed.
type Update struct {
	// ContainerID is the container's ID as in v1.ContainerStatus.ContainerID
	// (`<runtime>://<id>`).
	ContainerID string
	PodUID      types.UID
	Result      Result

	// ContainerName names the container in the pod spec.
	ContainerName string
	// GracePeriodSeconds is set on Liveness and Startup updates: how long the
	// container may take to stop when it is killed because of this probe
	// (KillGracePeriod). Zero on Readiness updates.
	GracePeriodSeconds int64
}

// MetricLabels identify one worker's metric series.
type MetricLabels struct {
	ProbeType string // Liveness, Readiness, Startup
	Container string
	Pod       string
	Namespace string
	PodUID    types.UID
}

// Metrics receives the kubelet's prober metrics. The agent implements it with
// Prometheus: prober_probe_total{probe_type,container,pod,namespace,pod_uid,result}
// and prober_probe_duration_seconds{probe_type,container,pod,namespace}.
type Metrics interface {
	// ProbeCompleted counts one probe; result is "successful", "failed" or
	// "unknown" (the kubelet's label values).
	ProbeCompleted(l MetricLabels, result string)
	// ProbeDuration observes how long a probe took. As in the kubelet it is
	// called for successful and unknown results, not for failures.
	ProbeDuration(l MetricLabels, d time.Duration)
	// Forget drops a worker's series when the worker ends.
	Forget(l MetricLabels)
}

// Options configure a Manager.
type Options struct {
	// Exec runs exec probes. Required for pods with exec probes; without it
	// they error (their result is discarded).
	Exec ExecRunner
	// Status provides pod IPs and container IDs. Required.
	Status StatusProvider
	// Clock drives the workers' periods, jitter and initial delays. Default:
	// the real clock.
	Clock clock.WithTicker
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Metrics is optional.
	Metrics Metrics
	// UserAgent of HTTP and gRPC probes. Default `kube-probe/<major>.<minor>`
	// of the Kubernetes API the module is built with (e.g. kube-probe/1.37).
	UserAgent string
	// Recorder receives the kubelet's probe events: Unhealthy for every
	// failed or errored run, ProbeWarning for a passing run with a warning.
	// Optional.
	Recorder EventRecorder
	// Journal receives what the probes find, for each pod's timeline: every
	// failed, errored or warning run (also reported as an event) and every
	// change of a published result that a probe made. Passing runs are not
	// noted, so a healthy pod's probes do not push its history out. Optional.
	Journal Journal
}

// Journal keeps what the probes of each pod found (the agent's per-pod
// timeline). Note is called from the workers' goroutines and must not block.
type Journal interface {
	Note(n Note)
}

// Note is one thing a probe worker found.
type Note struct {
	PodUID    types.UID
	Container string
	Type      ProbeType
	// What happened: "liveness probe failed", "readiness probe errored",
	// "readiness probe warning", "liveness probe Success -> Failure".
	What string
	// Message is the event's message when the run was reported as an event
	// (EventType, Reason: Warning Unhealthy, Warning ProbeWarning), else the
	// prober's output.
	Message string
	// Err is why the probe could not run (an errored probe).
	Err string
	// Took is how long the probe took, its retries included.
	Took time.Duration
	// EventType and Reason are the event's when the run was also reported
	// as one.
	EventType, Reason string
}

// EventRecorder receives events; client-go's record.EventRecorder satisfies
// it. The object is a *v1.ObjectReference to the pod with the container's
// field path (spec.containers{name}).
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// The kubelet's probe event reasons.
const (
	EventUnhealthy    = "Unhealthy"
	EventProbeWarning = "ProbeWarning"
)

// Manager runs the probes of the pods it is given.
type Manager interface {
	// AddPod starts workers for every probe of the pod's containers and
	// restartable init containers (sidecars). Workers that already exist are
	// kept.
	AddPod(pod *v1.Pod)
	// RemovePod stops the pod's workers; they drop their cached results.
	RemovePod(pod *v1.Pod)
	// CleanupPods stops the workers of every pod not in desired.
	CleanupPods(desired map[types.UID]sets.Empty)
	// StopLivenessAndStartup stops the pod's liveness and startup workers,
	// for a pod that is terminating.
	StopLivenessAndStartup(pod *v1.Pod)
	// UpdatePodStatus sets Started and Ready of the container statuses (and of
	// init container statuses) in status from the probe results: a container is
	// started when running and its startup probe succeeded or it has none; it is
	// ready when started, running and its readiness probe succeeded or it has
	// none. A non-restartable init container is ready when it exited 0.
	UpdatePodStatus(pod *v1.Pod, status *v1.PodStatus)
	// Get returns the cached result of a probe type for a container. id may be
	// `<runtime>://<id>` or the bare CRI id.
	Get(t ProbeType, containerID string) (Result, bool)

	// Liveness, Readiness and Startup deliver result changes. Consume all
	// three: a worker waits until its update is taken (or it is stopped).
	Liveness() <-chan Update
	Readiness() <-chan Update
	Startup() <-chan Update

	// Start is a no-op kept for the kubelet's shape: workers start in AddPod.
	Start()
	// Stop stops every worker and waits for them to end. AddPod does nothing
	// afterwards.
	Stop()
}

// KillGracePeriod is the kubelet's grace period, in seconds, for killing
// container c of pod because of a failed probe of type t: the pod's deletion
// grace period when it is being deleted, else the probe's own
// terminationGracePeriodSeconds for a liveness or startup probe, else the
// pod's terminationGracePeriodSeconds, else 2 s.
func KillGracePeriod(pod *v1.Pod, c *v1.Container, t ProbeType) int64 {
	const minimumGracePeriodSeconds = 2
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return *pod.DeletionGracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		if c != nil {
			var p *v1.Probe
			switch t {
			case Liveness:
				p = c.LivenessProbe
			case Startup:
				p = c.StartupProbe
			}
			if p != nil && p.TerminationGracePeriodSeconds != nil {
				return *p.TerminationGracePeriodSeconds
			}
		}
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return minimumGracePeriodSeconds
}
