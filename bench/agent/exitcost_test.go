package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
)

func TestDeltaByLabel(t *testing.T) {
	m0 := metrics{
		`kubelet_runtime_operations_total{operation_type="list_podsandbox"}`:  10,
		`kubelet_runtime_operations_total{operation_type="container_status"}`: 4,
		`kubelet_runtime_operations_total_other{operation_type="x"}`:          1,
	}
	m1 := metrics{
		`kubelet_runtime_operations_total{operation_type="list_podsandbox"}`:  16,
		`kubelet_runtime_operations_total{operation_type="container_status"}`: 4,
		`kubelet_runtime_operations_total{operation_type="stop_podsandbox"}`:  3, // new since m0
		`kubelet_runtime_operations_total_other{operation_type="x"}`:          5,
		`kubelet_runtime_operations_total{operation_type="a",other="b"}`:      7, // two labels: not ours
		`nodekit_pod_worker_status_reads_total{source="cache"}`:               2,
	}
	got := deltaByLabel(m0, m1, mRuntimeOps, "operation_type")
	want := map[string]float64{"list_podsandbox": 6, "container_status": 0, "stop_podsandbox": 3}
	if len(got) != len(want) {
		t.Fatalf("deltaByLabel = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("deltaByLabel[%s] = %v, want %v", k, got[k], v)
		}
	}
	if got := deltaByLabel(m0, m1, mStatusReads, "source"); got["cache"] != 2 || len(got) != 1 {
		t.Errorf("status reads = %v, want cache 2", got)
	}
	// A build without the metric: nothing.
	if got := deltaByLabel(m0, m0, mStatusReads, "source"); len(got) != 0 {
		t.Errorf("status reads of a build without them = %v, want none", got)
	}
}

func TestNewCostWindow(t *testing.T) {
	m0 := metrics{`kubelet_pod_worker_duration_seconds_count{operation_type="sync"}`: 30}
	m1 := metrics{`kubelet_pod_worker_duration_seconds_count{operation_type="sync"}`: 60,
		`kubelet_pod_worker_duration_seconds_count{operation_type="terminate"}`: 30}
	st0 := procfs.Stat{UTime: 100, STime: 50, CUTime: 7, CSTime: 3}
	st1 := procfs.Stat{UTime: 130, STime: 70, CUTime: 17, CSTime: 13}
	w := newCostWindow(m0, m1, st0, st1, 20*time.Second)
	if w.Seconds != 20 || w.CPU != 50 || w.Children != 20 || w.Steps["sync"] != 30 || w.Steps["terminate"] != 30 || len(w.CRI) != 0 {
		t.Errorf("window = %+v", w)
	}
}

func TestPerExit(t *testing.T) {
	// 20 s of baseline: 10 housekeeping lists, 4 stats calls, 40 ticks. The
	// kill window is 10 s long: its periodic share is half the baseline's.
	base := costWindow{Seconds: 20, CRI: map[string]float64{"list_podsandbox": 10, "list_container_stats": 4},
		Steps: map[string]float64{}, Reads: map[string]float64{"cache": 0}, CPU: 40, Children: 0}
	kill := costWindow{Seconds: 10,
		CRI:   map[string]float64{"list_podsandbox": 5 + 30, "container_status": 30, "stop_podsandbox": 10}, // no stats call in the window
		Steps: map[string]float64{"sync": 10, "terminate": 10}, Reads: map[string]float64{"cache": 20, "inspect": 10},
		CPU: 20 + 150, Children: 100}
	c := kill.excess(base).per(10)
	want := map[string]float64{"list_podsandbox": 3, "container_status": 3, "stop_podsandbox": 1, "list_container_stats": -0.2}
	for k, v := range want {
		if math.Abs(c.CRI[k]-v) > 1e-9 {
			t.Errorf("CRI[%s] = %v, want %v", k, c.CRI[k], v)
		}
	}
	if math.Abs(c.CRITotal-6.8) > 1e-9 {
		t.Errorf("CRITotal = %v, want 6.8", c.CRITotal)
	}
	// 150 ticks of 10 ms over 10 exits.
	if math.Abs(c.CPUMs-150) > 1e-9 || math.Abs(c.ChildMs-100) > 1e-9 {
		t.Errorf("CPU %v ms, children %v ms; want 150 and 100", c.CPUMs, c.ChildMs)
	}
	if c.Steps["sync"] != 1 || c.Reads["cache"] != 2 || c.Reads["inspect"] != 1 {
		t.Errorf("steps %v, reads %v", c.Steps, c.Reads)
	}
	// A build without status reads has none (the report prints "-").
	base.Reads, kill.Reads = map[string]float64{}, map[string]float64{}
	if c := kill.excess(base).per(10); c.Reads != nil {
		t.Errorf("reads of a build without the metric: %v, want nil", c.Reads)
	}
	if c := kill.excess(base).per(0); c.CRITotal != 0 || c.CPUMs != 0 {
		t.Errorf("no exits: %+v, want zero", c)
	}
}

func TestPooled(t *testing.T) {
	run := func(build string, cpu float64, lat time.Duration) *exitCostRun {
		return &exitCostRun{Build: build, Policy: "Never", Exits: 10,
			Baseline: costWindow{Seconds: 10, CPU: 10},
			Kills:    costWindow{Seconds: 10, CPU: 10 + cpu, CRI: map[string]float64{"container_status": 10}},
			handled:  []time.Duration{lat}}
	}
	r := &exitCostResult{Runs: []*exitCostRun{run("old", 100, time.Second), run("new", 50, time.Millisecond), run("new", 70, 2*time.Millisecond),
		{Build: "new", Policy: "Always", Exits: 5, Kills: costWindow{Seconds: 1, CPU: 1000}}}}
	c, base, lat, exits := r.pooled("new", "Never")
	if exits != 20 || math.Abs(c.CPUMs-60) > 1e-9 || c.CRITotal != 1 || base.Seconds != 20 || lat.N != 2 || lat.Max != 2*time.Millisecond {
		t.Errorf("pooled new/Never: %+v, base %+v, latency %+v, %d exits; want (50 + 70 ticks) × 10 ms / 20 = 60 ms per exit, one CRI call, 2 latencies", c, base, lat, exits)
	}
}

func TestParseLogLine(t *testing.T) {
	l := `time=2026-12-07T21:21:17.574Z level=INFO msg="started container" component=podruntime runtime=nodekit pod=default/cost-000-nkbench container=sleep id=d37f restartCount=1`
	a := parseLogLine(l)
	if a["msg"] != "started container" || a["pod"] != "default/cost-000-nkbench" || a["restartCount"] != "1" || a["level"] != "INFO" {
		t.Errorf("parseLogLine = %v", a)
	}
	a = parseLogLine(`time=x level=INFO msg="killing container" reason="" message="Stopping \"sleep\" now" gracePeriod=1`)
	if a["reason"] != "" || a["message"] != `Stopping "sleep" now` || a["gracePeriod"] != "1" {
		t.Errorf("quoted values: %v", a)
	}
	if a := parseLogLine("panic: something bad"); len(a) != 0 {
		t.Errorf("a line that is not key=value: %v", a)
	}
}

func TestHandledLine(t *testing.T) {
	stopped := `time=t level=INFO msg="pod stopped" pod=default/cost-001-nkbench`
	started := `time=t level=INFO msg="started container" component=podruntime pod=default/cost-001-nkbench container=sleep id=x restartCount=1`
	never := handledLine(v1.RestartPolicyNever, "default/cost-001-nkbench", 1)
	if !never(stopped) || never(started) || never(strings.Replace(stopped, "cost-001", "cost-0011", 1)) {
		t.Error("Never: want the pod's \"pod stopped\" line only")
	}
	always := handledLine(v1.RestartPolicyAlways, "default/cost-001-nkbench", 1)
	if !always(started) || always(stopped) || always(strings.Replace(started, "restartCount=1", "restartCount=0", 1)) ||
		always(strings.Replace(started, "cost-001", "cost-002", 1)) {
		t.Error("Always: want the pod's \"started container\" line with restartCount=1 only")
	}
}

func TestLogFollower(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubelet.log")
	if err := os.WriteFile(path, []byte("msg=\"pod stopped\" pod=a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := followLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	match := func(pod string) func(string) bool {
		return func(s string) bool { return parseLogLine(s)["pod"] == pod }
	}
	ctx := context.Background()
	// The line written before the follower started does not count.
	if _, err := l.waitFor(ctx, match("a"), 20*time.Millisecond); err == nil {
		t.Error("matched a line from before the follower started")
	}
	// A line matches once it is whole.
	if _, err := f.WriteString("msg=x pod=b"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.waitFor(ctx, match("b"), 50*time.Millisecond); err == nil {
		t.Error("matched a partial line")
	}
	if _, err := f.WriteString("\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.waitFor(ctx, match("b"), 30*time.Second); err != nil {
		t.Errorf("pod=b, once whole: %v", err)
	}
	// A line written while it waits.
	go func() {
		time.Sleep(20 * time.Millisecond)
		if _, err := f.WriteString("msg=y pod=c\n"); err != nil {
			t.Error(err)
		}
	}()
	if _, err := l.waitFor(ctx, match("c"), 30*time.Second); err != nil {
		t.Errorf("pod=c: %v", err)
	}
}

func TestReadOldExits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "old.json")
	if err := os.WriteFile(path, []byte(`{"exits":[{"pleg":"evented","evented_verified":true,"kill_to_status_put":{"n":100,"p50_ms":5.1,"p99_ms":15.2,"max_ms":16},"kill_to_cri_event":{"n":100,"p99_ms":14}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readOldExits(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].PLEG != "evented" || !got[0].Evented || got[0].Latency.N != 100 || got[0].Latency.P99 != 15.2 || got[0].CRIEvent.P99 != 14 {
		t.Errorf("readOldExits = %+v", got)
	}
	if err := os.WriteFile(path, []byte(`{"exits":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readOldExits(path); err == nil {
		t.Error("a file without exits: no error")
	}
}

func TestParseFlagsExitCost(t *testing.T) {
	if _, err := parseFlags([]string{"-parts", "exitcost"}); err == nil {
		t.Error("-parts exitcost without -old-bin: no error")
	}
	o, err := parseFlags([]string{"-parts", "exitcost", "-old-bin", "old", "-exitcost-policies", "Always"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.parts["exitcost"] || !filepath.IsAbs(o.exitCost.oldBin) || len(o.exitCost.policies) != 1 || o.exitCost.policies[0] != v1.RestartPolicyAlways ||
		o.exitCost.pods != 30 || o.exitCost.gap != 300*time.Millisecond {
		t.Errorf("options %+v", o.exitCost)
	}
	if _, err := parseFlags([]string{"-exitcost-policies", "Sometimes"}); err == nil {
		t.Error("an unknown restart policy: no error")
	}
}

// TestHandledLinesAreLogged: part exitcost waits for two lines of the agent's
// log; a change of their wording must change handledLine too.
func TestHandledLinesAreLogged(t *testing.T) {
	for file, want := range map[string][]string{
		"../../agent/agent.go":                {`.Info("pod stopped", "pod", `},
		"../../agent/podruntime/container.go": {`.Info("started container", "pod", `, `"restartCount"`},
	} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(data), w) {
				t.Errorf("%s does not log %s any more: update handledLine (bench/agent/exitcost.go)", file, w)
			}
		}
	}
}
