package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nodekit-dev/nodekit/bench/internal/stats"
)

// summary describes a set of durations (nearest-rank percentiles, see
// stats.Summary); in JSON without p90, which crishim does not report.
type summary stats.Summary

func summarize(d []time.Duration) summary { return summary(stats.Summarize(d)) }

// MarshalJSON writes durations in milliseconds.
func (s summary) MarshalJSON() ([]byte, error) {
	f := stats.Millis
	return json.Marshal(map[string]any{"n": s.N, "p50_ms": f(s.P50), "p95_ms": f(s.P95), "p99_ms": f(s.P99), "min_ms": f(s.Min), "max_ms": f(s.Max), "avg_ms": f(s.Avg)})
}

// ms formats a duration in milliseconds with one decimal.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

// mib formats KiB as MiB with two decimals.
func mib(kib float64) string {
	return fmt.Sprintf("%.2f", kib/1024)
}

// ratio formats a/b with two decimals, or "-" when b is zero.
func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}
