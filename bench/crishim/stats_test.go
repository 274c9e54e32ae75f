package main

import (
	"encoding/json"
	"testing"
	"time"
)

// crishim's JSON has no p90: its results keep the keys they always had.
func TestSummaryJSON(t *testing.T) {
	s := summarize([]time.Duration{1500 * time.Microsecond, 2 * time.Millisecond, 4 * time.Millisecond})
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"avg_ms":2.5,"max_ms":4,"min_ms":1.5,"n":3,"p50_ms":2,"p95_ms":4,"p99_ms":4}`; string(data) != want {
		t.Errorf("JSON %s, want %s", data, want)
	}
}
