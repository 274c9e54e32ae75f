package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func u64(v uint64) *uint64 { return &v }

// testSummary is a node with one pod of two containers; every figure has its
// own time.
func testSummary() *statsapi.Summary {
	at := func(sec int64) metav1.Time { return metav1.NewTime(time.Unix(1_700_000_000+sec, 0)) }
	return &statsapi.Summary{
		Node: statsapi.NodeStats{
			NodeName:  "node-a",
			StartTime: at(-1000),
			CPU:       &statsapi.CPUStats{Time: at(1), UsageCoreNanoSeconds: u64(12_500_000_000), UsageNanoCores: u64(3)},
			Memory:    &statsapi.MemoryStats{Time: at(2), WorkingSetBytes: u64(1 << 30), RSSBytes: u64(5)},
			Swap:      &statsapi.SwapStats{Time: at(3), SwapUsageBytes: u64(4096)},
			Network:   &statsapi.NetworkStats{Time: at(1)},
			Fs:        &statsapi.FsStats{Time: at(1), UsedBytes: u64(7)},
			SystemContainers: []statsapi.ContainerStats{{Name: "pods", StartTime: at(-5),
				CPU: &statsapi.CPUStats{Time: at(1), UsageCoreNanoSeconds: u64(1)}, Rootfs: &statsapi.FsStats{UsedBytes: u64(1)}}},
		},
		Pods: []statsapi.PodStats{{
			PodRef:           statsapi.PodReference{Name: "web", Namespace: "default", UID: "uid-web"},
			StartTime:        at(-100),
			CPU:              &statsapi.CPUStats{Time: at(4), UsageCoreNanoSeconds: u64(2_000_000_000)},
			Memory:           &statsapi.MemoryStats{Time: at(5), WorkingSetBytes: u64(2048)},
			Swap:             &statsapi.SwapStats{Time: at(5), SwapUsageBytes: u64(0)},
			Network:          &statsapi.NetworkStats{Time: at(1)},
			EphemeralStorage: &statsapi.FsStats{UsedBytes: u64(9)},
			Containers: []statsapi.ContainerStats{
				{Name: "app", StartTime: at(-90),
					CPU:    &statsapi.CPUStats{Time: at(6), UsageCoreNanoSeconds: u64(1_500_000_000)},
					Memory: &statsapi.MemoryStats{Time: at(7), WorkingSetBytes: u64(1024)},
					Swap:   &statsapi.SwapStats{Time: at(8), SwapUsageBytes: u64(100), SwapAvailableBytes: u64(900)},
					Rootfs: &statsapi.FsStats{UsedBytes: u64(3)}},
				{Name: "sidecar", StartTime: at(-80),
					CPU:    &statsapi.CPUStats{Time: at(6), UsageCoreNanoSeconds: u64(500_000_000)},
					Memory: &statsapi.MemoryStats{Time: at(7), WorkingSetBytes: u64(1024)}},
			},
		}},
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// sample finds the sample of family name with labels (name=value pairs).
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Errorf("no %s", name)
		return nil
	}
	want := map[string]string{}
	for i := 0; i < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	t.Errorf("no %s%v", name, labels)
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

func TestResourceMetrics(t *testing.T) {
	p := &fakeProvider{summary: testSummary()}
	o := baseOptions(t, p)
	o.ReadOnlyPort = freePort(t)
	s := start(t, o)
	fams := scrape(t, "http://"+s.Addrs().ReadOnly.String()+"/metrics/resource")
	ms := func(sec int64) int64 { return (1_700_000_000 + sec) * 1000 }
	for _, tc := range []struct {
		name   string
		labels []string
		typ    dto.MetricType
		value  float64
		ts     int64 // ms; 0: none
	}{
		{"node_cpu_usage_seconds_total", nil, dto.MetricType_COUNTER, 12.5, ms(1)},
		{"node_memory_working_set_bytes", nil, dto.MetricType_GAUGE, 1 << 30, ms(2)},
		{"node_swap_usage_bytes", nil, dto.MetricType_GAUGE, 4096, ms(3)},
		{"pod_cpu_usage_seconds_total", []string{"pod", "web", "namespace", "default"}, dto.MetricType_COUNTER, 2, ms(4)},
		{"pod_memory_working_set_bytes", []string{"pod", "web", "namespace", "default"}, dto.MetricType_GAUGE, 2048, ms(5)},
		{"pod_swap_usage_bytes", []string{"pod", "web", "namespace", "default"}, dto.MetricType_GAUGE, 0, ms(5)},
		{"container_cpu_usage_seconds_total", []string{"container", "app", "pod", "web", "namespace", "default"}, dto.MetricType_COUNTER, 1.5, ms(6)},
		{"container_cpu_usage_seconds_total", []string{"container", "sidecar", "pod", "web", "namespace", "default"}, dto.MetricType_COUNTER, 0.5, ms(6)},
		{"container_memory_working_set_bytes", []string{"container", "app", "pod", "web", "namespace", "default"}, dto.MetricType_GAUGE, 1024, ms(7)},
		{"container_swap_usage_bytes", []string{"container", "app", "pod", "web", "namespace", "default"}, dto.MetricType_GAUGE, 100, ms(8)},
		{"container_swap_limit_bytes", []string{"container", "app", "pod", "web", "namespace", "default"}, dto.MetricType_GAUGE, 1000, ms(8)},
		{"container_start_time_seconds", []string{"container", "app", "pod", "web", "namespace", "default"}, dto.MetricType_GAUGE, 1_700_000_000 - 90, 0},
		{"resource_scrape_error", nil, dto.MetricType_GAUGE, 0, 0},
	} {
		m := sample(t, fams, tc.name, tc.labels...)
		if m == nil {
			continue
		}
		if typ := fams[tc.name].GetType(); typ != tc.typ {
			t.Errorf("%s: type %v, want %v", tc.name, typ, tc.typ)
		}
		if v := value(m); v != tc.value {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, v, tc.value)
		}
		if ts := m.GetTimestampMs(); ts != tc.ts {
			t.Errorf("%s%v: timestamp %d, want %d", tc.name, tc.labels, ts, tc.ts)
		}
	}
	if h := fams["container_cpu_usage_seconds_total"].GetHelp(); h != "[STABLE] Cumulative cpu time consumed by the container in core-seconds" {
		t.Errorf("help %q", h)
	}
	if n := len(fams["container_swap_usage_bytes"].GetMetric()); n != 1 {
		t.Errorf("container_swap_usage_bytes: %d samples, want 1 (sidecar has no swap figures)", n)
	}

	// The summary failing: only resource_scrape_error 1.
	p.mu.Lock()
	p.summary, p.summaryErr = nil, errors.New("runtime down")
	p.mu.Unlock()
	fams = scrape(t, "http://"+s.Addrs().ReadOnly.String()+"/metrics/resource")
	if m := sample(t, fams, "resource_scrape_error"); m != nil && value(m) != 1 {
		t.Errorf("resource_scrape_error = %v, want 1", value(m))
	}
	if len(fams) != 1 {
		t.Errorf("families with the summary failing: %d, want 1", len(fams))
	}
}

// TestSummaryCPUAndMemoryOnly: metrics-server's request.
func TestSummaryCPUAndMemoryOnly(t *testing.T) {
	o := baseOptions(t, &fakeProvider{summary: testSummary()})
	o.AnonymousAuth = true
	s := start(t, o)
	c := tlsClient(t, o.CertDir, nil)
	for _, tc := range []struct {
		method, query string
		only          bool
	}{
		{"GET", "?only_cpu_and_memory=true", true},
		{"POST", "?only_cpu_and_memory=true", true},
		{"GET", "?only_cpu_and_memory=false", false},
		{"GET", "", false},
	} {
		code, body := do(t, c, tc.method, mainURL(s, "/stats/summary"+tc.query), nil)
		if code != 200 {
			t.Fatalf("%s /stats/summary%s: %d %s", tc.method, tc.query, code, body)
		}
		var sum statsapi.Summary
		if err := json.Unmarshal([]byte(body), &sum); err != nil {
			t.Fatal(err)
		}
		n, p := sum.Node, sum.Pods[0]
		if n.NodeName != "node-a" || n.CPU == nil || n.Memory == nil || n.Swap == nil || n.StartTime.IsZero() ||
			len(n.SystemContainers) != 1 || n.SystemContainers[0].CPU == nil ||
			p.PodRef.Name != "web" || p.CPU == nil || p.Memory == nil || p.StartTime.IsZero() ||
			len(p.Containers) != 2 || p.Containers[0].Name != "app" || p.Containers[0].CPU == nil || p.Containers[0].Memory == nil || p.Containers[0].StartTime.IsZero() {
			t.Errorf("%s%s: CPU and memory figures missing: %s", tc.method, tc.query, body)
		}
		full := n.Network != nil && n.Fs != nil && n.SystemContainers[0].Rootfs != nil && p.Network != nil &&
			p.EphemeralStorage != nil && p.Containers[0].Rootfs != nil
		none := n.Network == nil && n.Fs == nil && n.SystemContainers[0].Rootfs == nil && p.Network == nil &&
			p.EphemeralStorage == nil && p.Containers[0].Rootfs == nil
		if tc.only && !none {
			t.Errorf("%s%s: more than CPU and memory: %s", tc.method, tc.query, body)
		}
		if !tc.only && !full {
			t.Errorf("%s%s: figures missing from the full summary: %s", tc.method, tc.query, body)
		}
	}
}
