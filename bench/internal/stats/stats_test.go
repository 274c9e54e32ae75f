package stats

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 20; i >= 1; i-- { // 20..1 ms, unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(d)
	want := Summary{N: 20, P50: 10 * time.Millisecond, P90: 18 * time.Millisecond, P95: 19 * time.Millisecond, P99: 20 * time.Millisecond,
		Min: time.Millisecond, Max: 20 * time.Millisecond, Avg: 10500 * time.Microsecond}
	if s != want {
		t.Errorf("Summarize(1..20 ms) = %+v, want %+v", s, want)
	}
	if d[0] != 20*time.Millisecond {
		t.Error("Summarize sorted its input in place")
	}
	if (Summarize(nil) != Summary{}) {
		t.Error("Summarize(nil) is not zero")
	}

	d = d[:0]
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s = Summarize(d)
	if s.N != 100 || s.P50 != 50*time.Millisecond || s.P90 != 90*time.Millisecond || s.P99 != 99*time.Millisecond ||
		s.Max != 100*time.Millisecond || s.Min != time.Millisecond {
		t.Errorf("Summarize(1..100 ms) = %+v", s)
	}
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		n       int
		q       float64
		wantIdx int
	}{
		{1, 50, 0}, {1, 95, 0}, {30, 50, 14}, {30, 95, 28}, {31, 50, 15}, {2, 50, 0},
		{100, 99, 98}, {100, 50, 49}, {101, 99, 99}, {10, 90, 8},
	}
	for _, tt := range tests {
		sorted := make([]time.Duration, tt.n)
		for i := range sorted {
			sorted[i] = time.Duration(i)
		}
		if got := percentile(sorted, tt.q); got != time.Duration(tt.wantIdx) {
			t.Errorf("percentile(n=%d, %v) = index %d, want %d", tt.n, tt.q, got, tt.wantIdx)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v", got)
	}
}

func TestMarshalJSON(t *testing.T) {
	s := Summarize([]time.Duration{1500 * time.Microsecond, 2 * time.Millisecond, 3*time.Millisecond + 1234*time.Nanosecond})
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]float64
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"n": 3, "p50_ms": 2, "p90_ms": 3.001, "p95_ms": 3.001, "p99_ms": 3.001, "min_ms": 1.5, "max_ms": 3.001, "avg_ms": 2.167}
	if len(got) != len(want) {
		t.Errorf("JSON %s: %d keys, want %d", data, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("JSON %s: %s = %v, want %v", data, k, got[k], v)
		}
	}
}
