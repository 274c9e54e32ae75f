package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// summary describes a set of durations. Percentiles are nearest-rank: pQ is the
// smallest sample with at least Q% of the samples at or below it (p99 of 100
// samples is the 99th smallest).
type summary struct {
	N                                 int
	P50, P90, P95, P99, Min, Max, Avg time.Duration
}

func summarize(d []time.Duration) summary {
	if len(d) == 0 {
		return summary{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	return summary{
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

// MarshalJSON writes durations in milliseconds.
func (s summary) MarshalJSON() ([]byte, error) {
	f := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return json.Marshal(map[string]any{"n": s.N, "p50_ms": f(s.P50), "p90_ms": f(s.P90), "p95_ms": f(s.P95),
		"p99_ms": f(s.P99), "min_ms": f(s.Min), "max_ms": f(s.Max), "avg_ms": f(s.Avg)})
}

// ms formats a duration in milliseconds: two decimals below 10 ms, one above.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// mib formats KiB as MiB with one decimal.
func mib(kib float64) string { return fmt.Sprintf("%.1f", kib/1024) }

// table renders rows as a Markdown table (readable in a terminal too): the first
// row is the header; columns after the first are right-aligned.
func table(w io.Writer, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c), 2)
			}
		}
	}
	line := func(r []string) {
		var b strings.Builder
		b.WriteString("|")
		for i := range widths {
			c := ""
			if i < len(r) {
				c = r[i]
			}
			if i == 0 {
				fmt.Fprintf(&b, " %-*s |", widths[i], c)
			} else {
				fmt.Fprintf(&b, " %*s |", widths[i], c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	var b strings.Builder
	b.WriteString("|")
	for i, wd := range widths {
		if i == 0 {
			b.WriteString(" " + strings.Repeat("-", wd) + " |")
		} else {
			b.WriteString(" " + strings.Repeat("-", wd-1) + ": |")
		}
	}
	fmt.Fprintln(w, b.String())
	for _, r := range rows[1:] {
		line(r)
	}
}
