package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/bench/internal/stats"
)

func durations(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func testResults() []*agentResult {
	nk := &agentResult{Agent: agentNodekit, Label: agentLabel(agentNodekit),
		CreateRunning: stats.Summarize(durations(100, 200, 300)), CreateReady: stats.Summarize(durations(100, 200, 300)),
		ExitTerminated: stats.Summarize(durations(10, 20, 30)), ExitSucceeded: stats.Summarize(durations(10, 20, 30)),
		Idle: &idleResult{Pods: 100, Seconds: 120, Requests: requestCounts{Seconds: 120, Requests: 24},
			Groups: []procGroup{
				{Role: "agent", Name: "nodekit-kubelet", Count: 1, Cores: 0.02, Mem: procfs.Memory{Rss: 100 << 10, Pss: 90 << 10}},
				{Role: "helpers", Name: "nodekit-monitor", Count: 100, Cores: 0.01, Mem: procfs.Memory{Rss: 300 << 10, Pss: 100 << 10}},
			}}}
	kc := &agentResult{Agent: agentContainerd, Label: agentLabel(agentContainerd),
		CreateRunning: stats.Summarize(durations(400, 800, 1200)), CreateReady: stats.Summarize(durations(400, 800, 1200)),
		ExitTerminated: stats.Summarize(durations(500, 1000, 1500)), ExitSucceeded: stats.Summarize(durations(1000, 2000, 3000)),
		Idle: &idleResult{Pods: 100, Seconds: 120, Requests: requestCounts{Seconds: 120, Requests: 12, Watches: 2},
			Groups: []procGroup{
				{Role: "agent", Name: "kubelet", Count: 1, Cores: 0.06, ChildrenCores: 0.02, Mem: procfs.Memory{Rss: 200 << 10, Pss: 180 << 10}},
				{Role: "runtime", Name: "containerd", Count: 1, Cores: 0.02, Mem: procfs.Memory{Rss: 60 << 10, Pss: 60 << 10}},
				{Role: "helpers", Name: "containerd-shim-runc-v2", Count: 100, Cores: 0.1, Mem: procfs.Memory{Rss: 1000 << 10, Pss: 400 << 10}},
			}}}
	return []*agentResult{nk, kc}
}

func TestLatencyTable(t *testing.T) {
	rows := latencyTable(testResults())
	if len(rows) != 4 {
		t.Fatalf("%d rows, want header, 2 agents, 1 ratio: %q", len(rows), rows)
	}
	want := [][]string{
		{"nodekit-kubelet (3)", "200.0", "300.0", "200.0", "300.0", "20.0", "30.0", "20.0", "30.0"},
		{"kubelet + containerd (3)", "800.0", "1200.0", "800.0", "1200.0", "1000.0", "1500.0", "2000.0", "3000.0"},
		{"nodekit / kubelet + containerd", "0.25×", "0.25×", "0.25×", "0.25×", "0.02×", "0.02×", "0.01×", "0.01×"},
	}
	for i, w := range want {
		if got := strings.Join(rows[i+1], "|"); got != strings.Join(w, "|") {
			t.Errorf("row %d:\n got %s\nwant %s", i+1, got, strings.Join(w, "|"))
		}
	}
}

func TestIdleTable(t *testing.T) {
	rows := idleTable(testResults())
	if len(rows) != 4 {
		t.Fatalf("%d rows, want header, 2 agents, 1 ratio: %q", len(rows), rows)
	}
	want := [][]string{
		{"nodekit-kubelet, 100 pods, 120 s", "12.0", "0.00", "0.0200", "(in agent)", "0.0100", "0.0300", "100.0", "90.0", "(in agent)", "100.0", "190.0"},
		{"kubelet + containerd, 100 pods, 120 s", "6.0", "1.00", "0.0800", "0.0200", "0.1000", "0.2000", "200.0", "180.0", "60.0", "400.0", "640.0"},
		// The agent's cores and Pss against the kubelet's plus its runtime's.
		{"nodekit / kubelet + containerd", "2.00×", "–", "0.20× of kubelet+runtime", "", "0.10×", "0.15×", "0.50×", "0.38× of kubelet+runtime", "", "0.25×", "0.30×"},
	}
	for i, w := range want {
		if got := strings.Join(rows[i+1], "|"); got != strings.Join(w, "|") {
			t.Errorf("row %d:\n got %s\nwant %s", i+1, got, strings.Join(w, "|"))
		}
	}
}

func TestReportWithoutIdle(t *testing.T) {
	res := testResults()
	for _, a := range res {
		a.Idle = nil
	}
	var b bytes.Buffer
	report(&b, &results{Agents: res})
	if out := b.String(); !strings.Contains(out, "create → Running") || strings.Contains(out, "idle pods") {
		t.Errorf("report without idle figures:\n%s", out)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-agents", "nodekit, kubelet-containerd", "-pods", "5"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.agents, ",") != "nodekit,kubelet-containerd" || o.pods != 5 || o.idlePods != 100 || o.window != 2*time.Minute {
		t.Errorf("options %+v", o)
	}
	for _, bad := range [][]string{{"-agents", "docker"}, {"-agents", ""}, {"-window", "0s"}, {"extra"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q): no error", bad)
		}
	}
}
