package cri

import (
	"context"
	"errors"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/cgstats"
	"github.com/nodekit-dev/nodekit/cri/podns"
)

// Label keys of the metrics: "id" is the container's (or, for network metrics,
// the pod's) id, "name" its name. The kubelet adds namespace, pod and container
// labels itself.
var (
	metricLabels          = []string{"id", "name"}
	metricInterfaceLabels = []string{"id", "name", "interface"}
	metricDeviceLabels    = []string{"id", "name", "device"}
)

// metricDescriptors is the cAdvisor-named core set this shim reports: CPU,
// memory, writable layer, processes per container; network per pod. Counters
// in seconds are whole seconds, as the CRI carries integers (containerd does the
// same).
var metricDescriptors = []*runtime.MetricDescriptor{
	{Name: "container_cpu_usage_seconds_total", Help: "Cumulative CPU time consumed in seconds.", LabelKeys: metricLabels},
	{Name: "container_cpu_user_seconds_total", Help: "Cumulative user CPU time consumed in seconds.", LabelKeys: metricLabels},
	{Name: "container_cpu_system_seconds_total", Help: "Cumulative system CPU time consumed in seconds.", LabelKeys: metricLabels},
	{Name: "container_cpu_cfs_periods_total", Help: "Number of elapsed enforcement period intervals.", LabelKeys: metricLabels},
	{Name: "container_cpu_cfs_throttled_periods_total", Help: "Number of throttled period intervals.", LabelKeys: metricLabels},
	{Name: "container_cpu_cfs_throttled_seconds_total", Help: "Total time duration the container has been throttled.", LabelKeys: metricLabels},
	{Name: "container_memory_usage_bytes", Help: "Current memory usage in bytes, including all memory regardless of when it was accessed.", LabelKeys: metricLabels},
	{Name: "container_memory_working_set_bytes", Help: "Current working set in bytes.", LabelKeys: metricLabels},
	{Name: "container_memory_rss", Help: "Size of RSS in bytes.", LabelKeys: metricLabels},
	{Name: "container_memory_cache", Help: "Number of bytes of page cache memory.", LabelKeys: metricLabels},
	{Name: "container_memory_mapped_file", Help: "Size of memory mapped files in bytes.", LabelKeys: metricLabels},
	{Name: "container_memory_swap", Help: "Container swap usage in bytes.", LabelKeys: metricLabels},
	{Name: "container_memory_max_usage_bytes", Help: "Maximum memory usage recorded in bytes.", LabelKeys: metricLabels},
	{Name: "container_memory_failcnt", Help: "Number of times memory usage hit the limit.", LabelKeys: metricLabels},
	{Name: "container_spec_memory_limit_bytes", Help: "Memory limit for the container (0: none).", LabelKeys: metricLabels},
	{Name: "container_processes", Help: "Number of processes running inside the container.", LabelKeys: metricLabels},
	{Name: "container_fs_usage_bytes", Help: "Number of bytes that are consumed by the container on this filesystem.", LabelKeys: metricDeviceLabels},
	{Name: "container_fs_inodes_used", Help: "Number of inodes the container's writable layer uses.", LabelKeys: metricDeviceLabels},
	{Name: "container_network_receive_bytes_total", Help: "Cumulative count of bytes received.", LabelKeys: metricInterfaceLabels},
	{Name: "container_network_receive_packets_total", Help: "Cumulative count of packets received.", LabelKeys: metricInterfaceLabels},
	{Name: "container_network_receive_packets_dropped_total", Help: "Cumulative count of packets dropped while receiving.", LabelKeys: metricInterfaceLabels},
	{Name: "container_network_receive_errors_total", Help: "Cumulative count of errors encountered while receiving.", LabelKeys: metricInterfaceLabels},
	{Name: "container_network_transmit_bytes_total", Help: "Cumulative count of bytes transmitted.", LabelKeys: metricInterfaceLabels},
	{Name: "container_network_transmit_packets_total", Help: "Cumulative count of packets transmitted.", LabelKeys: metricInterfaceLabels},
	{Name: "container_network_transmit_packets_dropped_total", Help: "Cumulative count of packets dropped while transmitting.", LabelKeys: metricInterfaceLabels},
	{Name: "container_network_transmit_errors_total", Help: "Cumulative count of errors encountered while transmitting.", LabelKeys: metricInterfaceLabels},
}

// ListMetricDescriptors describes the metrics ListPodSandboxMetrics reports.
func (s *Server) ListMetricDescriptors(ctx context.Context, req *runtime.ListMetricDescriptorsRequest) (*runtime.ListMetricDescriptorsResponse, error) {
	return &runtime.ListMetricDescriptorsResponse{Descriptors: metricDescriptors}, nil
}

// ListPodSandboxMetrics reports, for every ready pod, its network metrics and
// its running containers' CPU, memory, process and writable layer metrics.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, req *runtime.ListPodSandboxMetricsRequest) (*runtime.ListPodSandboxMetricsResponse, error) {
	s.pruneStats()
	out := []*runtime.PodSandboxMetrics{}
	for _, sb := range s.objs.listSandboxes() {
		rec := sb.snapshot()
		if rec.State != runtime.PodSandboxState_SANDBOX_READY {
			continue
		}
		pm := &runtime.PodSandboxMetrics{PodSandboxId: rec.ID}
		if ns := rec.Namespace[string(podns.Net)]; ns != "" {
			ifaces, err := netStats(ns)
			if err != nil {
				s.log.Debug("pod network metrics", "sandbox", rec.ID, "err", err)
			}
			pm.Metrics = networkMetrics(rec.ID, rec.Config.GetMetadata().GetName(), ifaces, time.Now())
		}
		for _, c := range s.objs.containersOf(rec.ID) {
			crec := c.snapshot()
			if crec.State != runtime.ContainerState_CONTAINER_RUNNING {
				continue
			}
			ms, err := s.containerMetrics(&crec)
			if err != nil {
				s.log.Debug("container metrics", "container", crec.ID, "err", err)
			}
			if len(ms) == 0 {
				continue
			}
			pm.ContainerMetrics = append(pm.ContainerMetrics, &runtime.ContainerMetrics{ContainerId: crec.ID, Metrics: ms})
		}
		out = append(out, pm)
	}
	return &runtime.ListPodSandboxMetricsResponse{PodMetrics: out}, nil
}

func (s *Server) containerMetrics(rec *containerRecord) ([]*runtime.Metric, error) {
	path, err := s.containerCgroup(rec.ID)
	if err != nil {
		return nil, err
	}
	st, err := s.stats.cgroups.Stat(path)
	if errors.Is(err, cgstats.ErrNotFound) {
		return nil, nil // it exited meanwhile
	}
	if err != nil {
		return nil, err
	}
	ms := cgroupMetrics(rec.ID, rec.Config.GetMetadata().GetName(), st)
	fs := s.writableLayer(rec.ID)
	mount := fs.GetFsId().GetMountpoint()
	ms = append(ms, metricBuilder{ts: fs.GetTimestamp(), labels: []string{rec.ID, rec.Config.GetMetadata().GetName(), mount}}.all(
		gauge("container_fs_usage_bytes", fs.GetUsedBytes().GetValue()),
		gauge("container_fs_inodes_used", fs.GetInodesUsed().GetValue()),
	)...)
	return ms, nil
}

// cgroupMetrics turns one cgroup sample into the container's CPU, memory and
// process metrics.
func cgroupMetrics(id, name string, st *cgstats.Stats) []*runtime.Metric {
	b := metricBuilder{ts: st.Timestamp.UnixNano(), labels: []string{id, name}}
	c, m := st.CPU, st.Memory
	return b.all(
		counter("container_cpu_usage_seconds_total", c.UsageNanos/1e9),
		counter("container_cpu_user_seconds_total", c.UserNanos/1e9),
		counter("container_cpu_system_seconds_total", c.SystemNanos/1e9),
		counter("container_cpu_cfs_periods_total", c.Periods),
		counter("container_cpu_cfs_throttled_periods_total", c.ThrottledPeriods),
		counter("container_cpu_cfs_throttled_seconds_total", c.ThrottledNanos/1e9),
		gauge("container_memory_usage_bytes", m.Usage),
		gauge("container_memory_working_set_bytes", m.WorkingSet),
		gauge("container_memory_rss", m.RSS),
		gauge("container_memory_cache", m.Cache),
		gauge("container_memory_mapped_file", m.MappedFile),
		gauge("container_memory_swap", m.Swap),
		gauge("container_memory_max_usage_bytes", m.MaxUsage),
		counter("container_memory_failcnt", m.Failcnt),
		gauge("container_spec_memory_limit_bytes", m.Limit),
		gauge("container_processes", st.Pids.Current),
	)
}

// networkMetrics reports every interface of a pod but loopback.
func networkMetrics(id, name string, ifaces []ifaceStats, at time.Time) []*runtime.Metric {
	var out []*runtime.Metric
	for _, i := range ifaces {
		if i.name == "lo" {
			continue
		}
		b := metricBuilder{ts: at.UnixNano(), labels: []string{id, name, i.name}}
		out = append(out, b.all(
			counter("container_network_receive_bytes_total", i.rxBytes),
			counter("container_network_receive_packets_total", i.rxPackets),
			counter("container_network_receive_packets_dropped_total", i.rxDrop),
			counter("container_network_receive_errors_total", i.rxErrs),
			counter("container_network_transmit_bytes_total", i.txBytes),
			counter("container_network_transmit_packets_total", i.txPackets),
			counter("container_network_transmit_packets_dropped_total", i.txDrop),
			counter("container_network_transmit_errors_total", i.txErrs),
		)...)
	}
	return out
}

type metricValue struct {
	name  string
	typ   runtime.MetricType
	value uint64
}

func counter(name string, v uint64) metricValue {
	return metricValue{name, runtime.MetricType_COUNTER, v}
}

func gauge(name string, v uint64) metricValue { return metricValue{name, runtime.MetricType_GAUGE, v} }

// metricBuilder stamps metrics with one timestamp and one set of label values.
type metricBuilder struct {
	ts     int64
	labels []string
}

func (b metricBuilder) all(vs ...metricValue) []*runtime.Metric {
	out := make([]*runtime.Metric, 0, len(vs))
	for _, v := range vs {
		out = append(out, &runtime.Metric{
			Name: v.name, Timestamp: b.ts, MetricType: v.typ,
			LabelValues: b.labels, Value: u64(v.value),
		})
	}
	return out
}
