package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodekit-dev/nodekit/pleg"
	"github.com/nodekit-dev/nodekit/probes"
)

// metrics are the agent's Prometheus metrics, with the kubelet's names where the
// kubelet has one.
type metrics struct {
	relistDuration   prometheus.Histogram
	relistInterval   prometheus.Histogram
	plegLastSeen     prometheus.Gauge
	plegEvents       *prometheus.CounterVec
	plegDiscarded    prometheus.Counter
	plegStream       *prometheus.CounterVec
	plegLatency      prometheus.Histogram
	probeTotal       *prometheus.CounterVec
	probeDuration    *prometheus.HistogramVec
	workerDuration   *prometheus.HistogramVec
	runtimeOps       *prometheus.CounterVec
	runtimeOpsErrors *prometheus.CounterVec
	runtimeDuration  *prometheus.HistogramVec
	desiredPods      prometheus.Gauge
	statusReads      *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	const ns = "kubelet"
	m := &metrics{
		relistDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "pleg_relist_duration_seconds",
			Help: "Duration in seconds for relisting pods in PLEG.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		relistInterval: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "pleg_relist_interval_seconds",
			Help: "Interval in seconds between relisting in PLEG.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		plegLastSeen: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "pleg_last_seen_seconds",
			Help: "Timestamp in seconds when PLEG was last seen active."}),
		plegEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "pleg_events_total",
			Help: "Pod lifecycle events delivered, by type."}, []string{"type"}),
		plegDiscarded: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "pleg_discard_events",
			Help: "The number of discard events in PLEG."}),
		plegStream: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "evented_pleg_connection_total",
			Help: "Container event stream connections, by result."}, []string{"result"}),
		plegLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "evented_pleg_connection_latency_seconds",
			Help: "Latency of container events from the runtime to the agent.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		probeTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "prober", Name: "probe_total",
			Help: "Cumulative number of a liveness, readiness or startup probe for a container by result."},
			[]string{"probe_type", "result", "container", "pod", "namespace", "pod_uid"}),
		probeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "prober", Name: "probe_duration_seconds",
			Help: "Duration in seconds for a probe response.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)},
			[]string{"probe_type", "container", "pod", "namespace"}),
		workerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "pod_worker_duration_seconds",
			Help: "Duration in seconds to sync a single pod, by operation.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)},
			[]string{"operation_type"}),
		runtimeOps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "runtime_operations_total",
			Help: "Cumulative number of runtime operations by operation type."}, []string{"operation_type"}),
		runtimeOpsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "runtime_operations_errors_total",
			Help: "Cumulative number of runtime operation errors by operation type."}, []string{"operation_type"}),
		runtimeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "runtime_operations_duration_seconds",
			Help: "Duration in seconds of runtime operations, by operation type.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)},
			[]string{"operation_type"}),
		desiredPods: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "desired_pods",
			Help: "The number of pods the agent's sources want on the node."}),
		statusReads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "nodekit", Name: "pod_worker_status_reads_total",
			Help: "Runtime statuses the pod workers read, by source: the PLEG cache, or an inspection of the runtime when the cache is older than the worker's last change."},
			[]string{"source"}),
	}
	r.MustRegister(m.relistDuration, m.relistInterval, m.plegLastSeen, m.plegEvents, m.plegDiscarded, m.plegStream,
		m.plegLatency, m.probeTotal, m.probeDuration, m.workerDuration, m.runtimeOps, m.runtimeOpsErrors,
		m.runtimeDuration, m.desiredPods, m.statusReads)
	return m
}

func (m *metrics) observeSync(state workerState, d time.Duration, err error) {
	op := map[workerState]string{stateSyncing: "sync", stateTerminating: "terminate", stateTerminated: "cleanup"}[state]
	m.workerDuration.WithLabelValues(op).Observe(d.Seconds())
}

func (m *metrics) observeRuntime(op string, d time.Duration, err error) {
	m.runtimeOps.WithLabelValues(op).Inc()
	if err != nil {
		m.runtimeOpsErrors.WithLabelValues(op).Inc()
	}
	m.runtimeDuration.WithLabelValues(op).Observe(d.Seconds())
}

// plegMetrics adapts metrics to pleg.Metrics.
type plegMetrics struct{ m *metrics }

func (m *metrics) pleg() pleg.Metrics { return plegMetrics{m} }

func (p plegMetrics) ObserveRelistDuration(d time.Duration) { p.m.relistDuration.Observe(d.Seconds()) }
func (p plegMetrics) ObserveRelistInterval(d time.Duration) { p.m.relistInterval.Observe(d.Seconds()) }
func (p plegMetrics) SetLastSeen(t time.Time)               { p.m.plegLastSeen.Set(float64(t.Unix())) }
func (p plegMetrics) IncEvent(t pleg.EventType)             { p.m.plegEvents.WithLabelValues(string(t)).Inc() }
func (p plegMetrics) IncDiscardedEvent()                    { p.m.plegDiscarded.Inc() }
func (p plegMetrics) ObserveEventLatency(d time.Duration)   { p.m.plegLatency.Observe(d.Seconds()) }
func (p plegMetrics) ObserveStream(err error) {
	if err != nil {
		p.m.plegStream.WithLabelValues("error").Inc()
		return
	}
	p.m.plegStream.WithLabelValues("success").Inc()
}

// probeMetrics adapts metrics to probes.Metrics.
type probeMetrics struct{ m *metrics }

func (m *metrics) probes() probes.Metrics { return probeMetrics{m} }

func (p probeMetrics) ProbeCompleted(l probes.MetricLabels, result string) {
	p.m.probeTotal.WithLabelValues(l.ProbeType, result, l.Container, l.Pod, l.Namespace, string(l.PodUID)).Inc()
}

func (p probeMetrics) ProbeDuration(l probes.MetricLabels, d time.Duration) {
	p.m.probeDuration.WithLabelValues(l.ProbeType, l.Container, l.Pod, l.Namespace).Observe(d.Seconds())
}

func (p probeMetrics) Forget(l probes.MetricLabels) {
	for _, r := range []string{"successful", "failed", "unknown"} {
		p.m.probeTotal.DeleteLabelValues(l.ProbeType, r, l.Container, l.Pod, l.Namespace, string(l.PodUID))
	}
	p.m.probeDuration.DeleteLabelValues(l.ProbeType, l.Container, l.Pod, l.Namespace)
}
