package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const exposition = `# HELP kubelet_pleg_relist_duration_seconds Duration in seconds for relisting pods in PLEG.
# TYPE kubelet_pleg_relist_duration_seconds histogram
kubelet_pleg_relist_duration_seconds_bucket{le="0.001"} 2
kubelet_pleg_relist_duration_seconds_bucket{le="0.002"} 50
kubelet_pleg_relist_duration_seconds_bucket{le="0.004"} 59
kubelet_pleg_relist_duration_seconds_bucket{le="+Inf"} 60
kubelet_pleg_relist_duration_seconds_sum 0.09
kubelet_pleg_relist_duration_seconds_count 60
kubelet_runtime_operations_total{operation_type="list_podsandbox"} 30
kubelet_runtime_operations_total{operation_type="container_status"} 200
kubelet_evented_pleg_connection_total{result="success"} 1
kubelet_desired_pods 100
`

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.sum("kubelet_runtime_operations_total"); got != 230 {
		t.Errorf("sum(kubelet_runtime_operations_total) = %v, want 230", got)
	}
	if got := m.get(mStreamOK); got != 1 {
		t.Errorf("get(%s) = %v, want 1", mStreamOK, got)
	}
	if got := m.get("kubelet_desired_pods"); got != 100 {
		t.Errorf("kubelet_desired_pods = %v, want 100", got)
	}
	h := m.histogram(mRelistDuration)
	if h.count != 60 || math.Abs(h.mean()-0.0015) > 1e-9 {
		t.Errorf("histogram count %v mean %v, want 60 and 0.0015", h.count, h.mean())
	}
	for _, tc := range []struct{ q, want float64 }{{0.5, 0.002}, {0.9, 0.004}, {0.99, math.Inf(1)}, {0.01, 0.001}} {
		if got := h.quantileBound(tc.q); got != tc.want {
			t.Errorf("quantileBound(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if _, err := parseMetrics(strings.NewReader("novalue\n")); err == nil {
		t.Error("a line without a value: no error")
	}
}

func TestHistogramMinus(t *testing.T) {
	m0, _ := parseMetrics(strings.NewReader(exposition))
	later := strings.NewReplacer(`le="0.002"} 50`, `le="0.002"} 70`, `le="0.004"} 59`, `le="0.004"} 80`,
		`le="+Inf"} 60`, `le="+Inf"} 81`, "_sum 0.09", "_sum 0.13", "_count 60", "_count 81").Replace(exposition)
	m1, _ := parseMetrics(strings.NewReader(later))
	d := m1.histogram(mRelistDuration).minus(m0.histogram(mRelistDuration))
	if d.count != 21 || math.Abs(d.sum-0.04) > 1e-9 {
		t.Fatalf("delta count %v sum %v, want 21 and 0.04", d.count, d.sum)
	}
	// 20 of the 21 new observations were ≤ 2 ms, one was ≤ 4 ms.
	if got := d.quantileBound(0.5); got != 0.002 {
		t.Errorf("delta p50 bound = %v, want 0.002", got)
	}
	if got := d.quantileBound(0.99); got != 0.004 {
		t.Errorf("delta p99 bound = %v, want 0.004", got)
	}
}

func TestScrapeRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: mRelistDuration, Help: "h", Buckets: prometheus.ExponentialBuckets(0.001, 2, 4)})
	reg.MustRegister(h)
	for _, d := range []time.Duration{time.Millisecond, 3 * time.Millisecond} {
		h.Observe(d.Seconds())
	}
	m, err := scrapeRegistry(reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.histogram(mRelistDuration); got.count != 2 || math.Abs(got.mean()-0.002) > 1e-9 {
		t.Errorf("scraped histogram count %v mean %v, want 2 and 0.002", got.count, got.mean())
	}
}
