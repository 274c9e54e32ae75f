// Package stats summarises a set of measured durations: count, nearest-rank
// percentiles (p50, p90, p95, p99), minimum, maximum and mean. A Summary
// marshals to JSON with its durations in milliseconds.
package stats
