package pleg

import (
	"context"
	"log/slog"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"
)

// Runtime is the part of the CRI runtime service a PLEG uses.
// k8s.io/cri-api's internalapi.RuntimeService (and so k8s.io/cri-client's remote
// client) satisfies it.
type Runtime interface {
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error)
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
	// GetContainerEvents streams the runtime's container events into ch until ctx
	// ends or the stream fails; established is called once the stream is open.
	GetContainerEvents(ctx context.Context, ch chan *runtimeapi.ContainerEventResponse, established func(runtimeapi.RuntimeService_GetContainerEventsClient)) error
}

// Metrics receives a PLEG's measurements. The agent implements it with the
// Prometheus names given with each method (the kubelet's where it has one). All methods must be safe
// for concurrent use.
type Metrics interface {
	// ObserveRelistDuration: how long one relist took
	// (kubelet_pleg_relist_duration_seconds).
	ObserveRelistDuration(time.Duration)
	// ObserveRelistInterval: the time between the starts of two consecutive
	// relists (kubelet_pleg_relist_interval_seconds).
	ObserveRelistInterval(time.Duration)
	// SetLastSeen: the start of the last successful relist, set on every
	// Healthy call (kubelet_pleg_last_seen_seconds).
	SetLastSeen(time.Time)
	// IncEvent counts an event delivered on the Watch channel, by type
	// (kubelet_pleg_events_total{type}; the kubelet has no such metric).
	IncEvent(EventType)
	// IncDiscardedEvent counts an event dropped because the Watch channel was
	// full (kubelet_pleg_discard_events).
	IncDiscardedEvent()
	// ObserveStream counts container event stream connections: err == nil when
	// one was established, the error when one ended or failed
	// (kubelet_evented_pleg_connection_total{result="success"|"error"}; the
	// kubelet counts them in evented_pleg_connection_success_count and
	// evented_pleg_connection_error_count).
	ObserveStream(err error)
	// ObserveEventLatency: from a CRI container event's creation to its
	// processing by the PLEG (kubelet_evented_pleg_connection_latency_seconds).
	ObserveEventLatency(time.Duration)
}

// Options configures a PLEG. Zero values pick the defaults given with each field.
type Options struct {
	// Runtime is the container runtime (required).
	Runtime Runtime
	// Cache receives the pods' statuses (default: a new Cache, which only the
	// PLEG then sees; pass your own to read it).
	Cache Cache
	// Clock drives relists and timestamps (default: the real clock).
	Clock clock.WithTicker
	// RelistPeriod is the time between the end of a relist and the start of
	// the next in the generic PLEG (default 1 s, the kubelet's).
	RelistPeriod time.Duration
	// RelistThreshold: the PLEG is unhealthy when no relist succeeded for this
	// long (default 3 min, the kubelet's). The evented PLEG, relisting rarely,
	// allows EventedRelistPeriod on top while events drive it (8 min with the
	// defaults) and RelistThreshold alone once it has fallen back to relisting.
	RelistThreshold time.Duration
	// Concurrency bounds how many pods a relist inspects at once (default 8).
	Concurrency int
	// InspectTimeout bounds one pod's inspection and each list call of a
	// relist, so one slow pod cannot stall the node (default 10 s).
	InspectTimeout time.Duration
	// EventBuffer is the capacity of the Watch channel; events that do not fit
	// are dropped and counted (default 1000, the kubelet's).
	EventBuffer int
	// Logger receives the PLEG's logs (default slog.Default()).
	Logger *slog.Logger
	// Metrics receives measurements (optional).
	Metrics Metrics

	// DisableEvented makes New return the generic PLEG even when the runtime
	// streams container events (the kubelet's EventedPLEG feature gate off).
	DisableEvented bool
	// EventedRelistPeriod is the safety-net relist period while container
	// events drive the PLEG (default 300 s, the kubelet's).
	EventedRelistPeriod time.Duration
	// FallbackAfter stream failures within FallbackWindow make the evented PLEG
	// fall back to relisting every RelistPeriod (default 5 within 1 min).
	FallbackAfter  int
	FallbackWindow time.Duration
}

// Default values of Options.
const (
	DefaultRelistPeriod        = time.Second
	DefaultRelistThreshold     = 3 * time.Minute
	DefaultConcurrency         = 8
	DefaultInspectTimeout      = 10 * time.Second
	DefaultEventBuffer         = 1000
	DefaultEventedRelistPeriod = 300 * time.Second
	DefaultFallbackAfter       = 5
	DefaultFallbackWindow      = time.Minute
)

func (o Options) withDefaults() Options {
	if o.Runtime == nil {
		panic("pleg: Options.Runtime is required")
	}
	if o.Cache == nil {
		o.Cache = NewCache()
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.RelistPeriod <= 0 {
		o.RelistPeriod = DefaultRelistPeriod
	}
	if o.RelistThreshold <= 0 {
		o.RelistThreshold = DefaultRelistThreshold
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.InspectTimeout <= 0 {
		o.InspectTimeout = DefaultInspectTimeout
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = DefaultEventBuffer
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	if o.EventedRelistPeriod <= 0 {
		o.EventedRelistPeriod = DefaultEventedRelistPeriod
	}
	if o.FallbackAfter <= 0 {
		o.FallbackAfter = DefaultFallbackAfter
	}
	if o.FallbackWindow <= 0 {
		o.FallbackWindow = DefaultFallbackWindow
	}
	return o
}

type nopMetrics struct{}

func (nopMetrics) ObserveRelistDuration(time.Duration) {}
func (nopMetrics) ObserveRelistInterval(time.Duration) {}
func (nopMetrics) SetLastSeen(time.Time)               {}
func (nopMetrics) IncEvent(EventType)                  {}
func (nopMetrics) IncDiscardedEvent()                  {}
func (nopMetrics) ObserveStream(error)                 {}
func (nopMetrics) ObserveEventLatency(time.Duration)   {}
