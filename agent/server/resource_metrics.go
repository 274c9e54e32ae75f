package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// /metrics/resource: the kubelet's resource metrics (what metrics-server and
// kubectl top read), from the Provider's Summary: CPU time and working set of
// the node, each pod and each container, swap use where known, container start
// times, and resource_scrape_error. Names, help texts, labels and timestamps
// (each sample stamped with the time of its figure) are the kubelet's.

var (
	nodeCPUDesc = prometheus.NewDesc("node_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the node in core-seconds", nil, nil)
	nodeMemoryDesc = prometheus.NewDesc("node_memory_working_set_bytes",
		"[STABLE] Current working set of the node in bytes", nil, nil)
	nodeSwapDesc = prometheus.NewDesc("node_swap_usage_bytes",
		"[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems", nil, nil)
	containerCPUDesc = prometheus.NewDesc("container_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the container in core-seconds", []string{"container", "pod", "namespace"}, nil)
	containerMemoryDesc = prometheus.NewDesc("container_memory_working_set_bytes",
		"[STABLE] Current working set of the container in bytes", []string{"container", "pod", "namespace"}, nil)
	containerSwapDesc = prometheus.NewDesc("container_swap_usage_bytes",
		"[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems", []string{"container", "pod", "namespace"}, nil)
	containerSwapLimitDesc = prometheus.NewDesc("container_swap_limit_bytes",
		"[ALPHA] Current amount of the container swap limit in bytes. Reported only on non-windows systems", []string{"container", "pod", "namespace"}, nil)
	containerStartDesc = prometheus.NewDesc("container_start_time_seconds",
		"[STABLE] Start time of the container since unix epoch in seconds", []string{"container", "pod", "namespace"}, nil)
	podCPUDesc = prometheus.NewDesc("pod_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the pod in core-seconds", []string{"pod", "namespace"}, nil)
	podMemoryDesc = prometheus.NewDesc("pod_memory_working_set_bytes",
		"[STABLE] Current working set of the pod in bytes", []string{"pod", "namespace"}, nil)
	podSwapDesc = prometheus.NewDesc("pod_swap_usage_bytes",
		"[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems", []string{"pod", "namespace"}, nil)
	scrapeErrorDesc = prometheus.NewDesc("resource_scrape_error",
		"[STABLE] 1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
)

// resourceCollector collects the resource metrics of one scrape.
type resourceCollector struct {
	ctx context.Context
	p   Provider
	log *slog.Logger
}

func (c resourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{nodeCPUDesc, nodeMemoryDesc, nodeSwapDesc, containerStartDesc, containerCPUDesc,
		containerMemoryDesc, containerSwapDesc, containerSwapLimitDesc, podCPUDesc, podMemoryDesc, podSwapDesc, scrapeErrorDesc} {
		ch <- d
	}
}

func (c resourceCollector) Collect(ch chan<- prometheus.Metric) {
	sum, err := c.p.Summary(c.ctx)
	if err != nil || sum == nil {
		c.log.Warn("resource metrics: stats summary", "err", err)
		ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, 1)
		return
	}
	n := sum.Node
	if n.CPU != nil && n.CPU.UsageCoreNanoSeconds != nil {
		ch <- stamped(n.CPU.Time.Time, nodeCPUDesc, prometheus.CounterValue, seconds(*n.CPU.UsageCoreNanoSeconds))
	}
	if n.Memory != nil && n.Memory.WorkingSetBytes != nil {
		ch <- stamped(n.Memory.Time.Time, nodeMemoryDesc, prometheus.GaugeValue, float64(*n.Memory.WorkingSetBytes))
	}
	if n.Swap != nil && n.Swap.SwapUsageBytes != nil {
		ch <- stamped(n.Swap.Time.Time, nodeSwapDesc, prometheus.GaugeValue, float64(*n.Swap.SwapUsageBytes))
	}
	for _, p := range sum.Pods {
		name, ns := p.PodRef.Name, p.PodRef.Namespace
		for _, ct := range p.Containers {
			if ct.StartTime.Unix() > 0 {
				ch <- prometheus.MustNewConstMetric(containerStartDesc, prometheus.GaugeValue,
					float64(ct.StartTime.UnixNano())/float64(time.Second), ct.Name, name, ns)
			}
			if ct.CPU != nil && ct.CPU.UsageCoreNanoSeconds != nil {
				ch <- stamped(ct.CPU.Time.Time, containerCPUDesc, prometheus.CounterValue, seconds(*ct.CPU.UsageCoreNanoSeconds), ct.Name, name, ns)
			}
			if ct.Memory != nil && ct.Memory.WorkingSetBytes != nil {
				ch <- stamped(ct.Memory.Time.Time, containerMemoryDesc, prometheus.GaugeValue, float64(*ct.Memory.WorkingSetBytes), ct.Name, name, ns)
			}
			if sw := ct.Swap; sw != nil {
				used := 0.0
				if sw.SwapUsageBytes != nil {
					used = float64(*sw.SwapUsageBytes)
					ch <- stamped(sw.Time.Time, containerSwapDesc, prometheus.GaugeValue, used, ct.Name, name, ns)
				}
				if sw.SwapAvailableBytes != nil {
					ch <- stamped(sw.Time.Time, containerSwapLimitDesc, prometheus.GaugeValue, float64(*sw.SwapAvailableBytes)+used, ct.Name, name, ns)
				}
			}
		}
		if p.CPU != nil && p.CPU.UsageCoreNanoSeconds != nil {
			ch <- stamped(p.CPU.Time.Time, podCPUDesc, prometheus.CounterValue, seconds(*p.CPU.UsageCoreNanoSeconds), name, ns)
		}
		if p.Memory != nil && p.Memory.WorkingSetBytes != nil {
			ch <- stamped(p.Memory.Time.Time, podMemoryDesc, prometheus.GaugeValue, float64(*p.Memory.WorkingSetBytes), name, ns)
		}
		if p.Swap != nil && p.Swap.SwapUsageBytes != nil {
			ch <- stamped(p.Swap.Time.Time, podSwapDesc, prometheus.GaugeValue, float64(*p.Swap.SwapUsageBytes), name, ns)
		}
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, 0)
}

func seconds(nanos uint64) float64 { return float64(nanos) / float64(time.Second) }

func stamped(t time.Time, d *prometheus.Desc, vt prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	return prometheus.NewMetricWithTimestamp(t, prometheus.MustNewConstMetric(d, vt, v, labels...))
}

// serveResourceMetrics answers one scrape of /metrics/resource.
func (s *Server) serveResourceMetrics(w http.ResponseWriter, r *http.Request) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(resourceCollector{ctx: r.Context(), p: s.o.Provider, log: s.log}); err != nil {
		writeError(w, http.StatusInternalServerError, "resource metrics: "+err.Error())
		return
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}).ServeHTTP(w, r)
}

// cpuAndMemoryOnly is the summary /stats/summary?only_cpu_and_memory=true
// answers, as the kubelet's: the node's, its system containers', the pods' and
// their containers' CPU, memory and swap figures with names and start times.
func cpuAndMemoryOnly(in *statsapi.Summary) *statsapi.Summary {
	if in == nil {
		return nil
	}
	n := in.Node
	out := &statsapi.Summary{Node: statsapi.NodeStats{
		NodeName: n.NodeName, StartTime: n.StartTime, CPU: n.CPU, Memory: n.Memory, Swap: n.Swap,
	}}
	for _, c := range n.SystemContainers {
		out.Node.SystemContainers = append(out.Node.SystemContainers, cpuAndMemoryOf(c))
	}
	out.Pods = make([]statsapi.PodStats, 0, len(in.Pods))
	for _, p := range in.Pods {
		q := statsapi.PodStats{PodRef: p.PodRef, StartTime: p.StartTime, CPU: p.CPU, Memory: p.Memory, Swap: p.Swap}
		for _, c := range p.Containers {
			q.Containers = append(q.Containers, cpuAndMemoryOf(c))
		}
		out.Pods = append(out.Pods, q)
	}
	return out
}

func cpuAndMemoryOf(c statsapi.ContainerStats) statsapi.ContainerStats {
	return statsapi.ContainerStats{Name: c.Name, StartTime: c.StartTime, CPU: c.CPU, Memory: c.Memory, Swap: c.Swap}
}
