package stats

import (
	"encoding/json"
	"math"
	"slices"
	"time"
)

// Summary describes a set of durations. Percentiles are nearest-rank: pQ is the
// smallest sample with at least Q% of the samples at or below it (p99 of 100
// samples is the 99th smallest).
type Summary struct {
	N                                 int
	P50, P90, P95, P99, Min, Max, Avg time.Duration
}

// Summarize describes d (which it leaves as it is); the zero Summary when d is
// empty.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	return Summary{
		N:   len(s),
		P50: percentile(s, 50),
		P90: percentile(s, 90),
		P95: percentile(s, 95),
		P99: percentile(s, 99),
		Min: s[0],
		Max: s[len(s)-1],
		Avg: sum / time.Duration(len(s)),
	}
}

// percentile returns the nearest-rank q-th percentile of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q / 100 * float64(len(sorted))))
	rank = max(rank, 1)
	rank = min(rank, len(sorted))
	return sorted[rank-1]
}

// Millis is d in milliseconds, to the microsecond: what MarshalJSON writes.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// MarshalJSON writes the durations in milliseconds: {"n", "p50_ms", "p90_ms",
// "p95_ms", "p99_ms", "min_ms", "max_ms", "avg_ms"}.
func (s Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"n": s.N, "p50_ms": Millis(s.P50), "p90_ms": Millis(s.P90), "p95_ms": Millis(s.P95),
		"p99_ms": Millis(s.P99), "min_ms": Millis(s.Min), "max_ms": Millis(s.Max), "avg_ms": Millis(s.Avg)})
}
