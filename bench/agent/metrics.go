package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is one scrape of a Prometheus text exposition: value by series
// (`name` or `name{labels}` exactly as exposed).
type metrics map[string]float64

// parseMetrics reads the Prometheus text format (comments and blank lines
// skipped; timestamps, if any, ignored).
func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		// The series ends at the last '}' if it has labels, else at the first space.
		var series, rest string
		if i := strings.LastIndexByte(l, '}'); i >= 0 {
			series, rest = l[:i+1], l[i+1:]
		} else if i := strings.IndexByte(l, ' '); i >= 0 {
			series, rest = l[:i], l[i:]
		} else {
			return nil, fmt.Errorf("metrics line %q: no value", l)
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metrics line %q: no value", l)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", l, err)
		}
		m[series] = v
	}
	return m, sc.Err()
}

// sum adds every series of metric name (all label values).
func (m metrics) sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// get returns one series' value (0 when absent).
func (m metrics) get(series string) float64 { return m[series] }

// histogram is a Prometheus histogram's cumulative buckets, count and sum.
type histogram struct {
	bounds []float64 // upper bounds, ascending (+Inf last)
	counts []float64 // cumulative
	count  float64
	sum    float64
}

// histogram extracts the unlabelled histogram name.
func (m metrics) histogram(name string) histogram {
	var h histogram
	type b struct{ le, n float64 }
	var bs []b
	prefix := name + `_bucket{le="`
	for k, v := range m {
		if le, ok := strings.CutPrefix(k, prefix); ok {
			le = strings.TrimSuffix(le, `"}`)
			bound, err := strconv.ParseFloat(le, 64)
			if err != nil {
				continue
			}
			bs = append(bs, b{bound, v})
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	for _, x := range bs {
		h.bounds = append(h.bounds, x.le)
		h.counts = append(h.counts, x.n)
	}
	h.count, h.sum = m[name+"_count"], m[name+"_sum"]
	return h
}

// minus is the histogram of the observations made between old and h.
func (h histogram) minus(old histogram) histogram {
	d := histogram{bounds: h.bounds, count: h.count - old.count, sum: h.sum - old.sum}
	d.counts = make([]float64, len(h.counts))
	for i := range h.counts {
		d.counts[i] = h.counts[i]
		if i < len(old.counts) {
			d.counts[i] -= old.counts[i]
		}
	}
	return d
}

func (h histogram) mean() float64 {
	if h.count == 0 {
		return 0
	}
	return h.sum / h.count
}

// quantileBound is the upper bound of the bucket holding quantile q (the
// histogram only knows that much); +Inf when it lies in the last bucket.
func (h histogram) quantileBound(q float64) float64 {
	if h.count == 0 {
		return 0
	}
	rank := math.Ceil(q * h.count)
	for i, c := range h.counts {
		if c >= rank {
			return h.bounds[i]
		}
	}
	return math.Inf(1)
}

// scrapeSocket reads /metrics from the kubelet's local API socket.
func scrapeSocket(ctx context.Context, socket string) (metrics, error) {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", socket, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// scrapeRegistry reads an in-process agent's registry through the same text
// format.
func scrapeRegistry(g prometheus.Gatherer) (metrics, error) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	promhttp.HandlerFor(g, promhttp.HandlerOpts{}).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("gather metrics: %d %s", rec.Code, rec.Body.String())
	}
	return parseMetrics(rec.Body)
}

// Metric names the benchmark reads (the agent's, with the kubelet's names).
const (
	mRelistDuration = "kubelet_pleg_relist_duration_seconds"
	mStreamOK       = `kubelet_evented_pleg_connection_total{result="success"}`
	mStreamErr      = `kubelet_evented_pleg_connection_total{result="error"}`
	mWorkerSyncs    = `kubelet_pod_worker_duration_seconds_count{operation_type="sync"}`
)
