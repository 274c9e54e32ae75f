package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nodekit-dev/nodekit/bench/internal/mdtable"
)

// opTargetRatio: every lifecycle operation's p50 on nodekit ≤ 0.7 × containerd's.
// exitTarget: exit-to-event p99 ≤ 20 ms.
const (
	opTargetRatio = 0.7
	exitTarget    = 20 * time.Millisecond
)

// lifecycleSum names the per-cycle total row of a benchmark.
const lifecycleSum = "(cycle total)"

// durations of operation op of benchmark b over every run against rt.
func (res *critestResults) durations(rt, b string, op int) []time.Duration {
	var out []time.Duration
	for _, run := range res.Runs {
		if run.Runtime != rt {
			continue
		}
		for _, cycle := range run.Ops[b] {
			if op < 0 { // the cycle's total
				var sum float64
				for _, v := range cycle {
					sum += v
				}
				out = append(out, msDuration(sum))
			} else if op < len(cycle) {
				out = append(out, msDuration(cycle[op]))
			}
		}
	}
	return out
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// summarize computes the per-operation figures and evaluates the targets.
func (res *critestResults) summarize() {
	res.Ops = nil
	for _, b := range critestBenchmarks {
		// Each operation, then the cycle's total (index -1).
		for i := 0; i <= len(b.ops); i++ {
			idx := i
			if i == len(b.ops) {
				idx = -1
			}
			name, calls := lifecycleSum, "all of the above"
			if idx >= 0 {
				name, calls = b.ops[idx].name, b.ops[idx].calls
			}
			o := opResult{Benchmark: b.key, Operation: name, Calls: calls, Runtimes: map[string]summary{}}
			for _, rt := range res.Runtimes {
				o.Runtimes[rt] = summarize(res.durations(rt, b.key, idx))
			}
			res.Ops = append(res.Ops, o)
		}
	}
	res.Scratch = map[string]summary{}
	for _, rt := range res.Runtimes {
		var d []time.Duration
		for _, run := range res.Runs {
			if run.Runtime == rt {
				d = append(d, run.scratch...)
			}
		}
		res.Scratch[rt] = summarize(d)
	}
	for _, e := range res.Exits {
		e.summarize()
	}

	res.Targets = nil
	for _, o := range res.Ops {
		nk, ctd := o.Runtimes["nodekit"], o.Runtimes["containerd"]
		if o.Operation == lifecycleSum || nk.N == 0 || ctd.N == 0 {
			continue
		}
		v := float64(nk.P50) / float64(ctd.P50)
		res.Targets = append(res.Targets, target{
			Name:  fmt.Sprintf("%s p50: nodekit ≤ %.1f × containerd", o.Operation, opTargetRatio),
			Value: v, Limit: opTargetRatio, Met: v <= opTargetRatio,
		})
	}
	for _, e := range res.Exits {
		if e.Method != "events" || !e.Supported || e.Latency.N == 0 {
			continue
		}
		v := float64(e.Latency.P99) / float64(time.Millisecond)
		lim := float64(exitTarget) / float64(time.Millisecond)
		res.Targets = append(res.Targets, target{
			Name:  fmt.Sprintf("%s exit-to-event p99 ≤ %.0f ms (ms)", e.Runtime, lim),
			Value: v, Limit: lim, Met: v <= lim && e.Missed == 0,
		})
	}
}

// reportCritest prints the results as Markdown tables.
func reportCritest(w io.Writer, res *critestResults) {
	fmt.Fprintf(w, "\n## critest -benchmark (%s)\n\n", res.Started)
	for _, k := range []string{"kernel", "debian", "cpu", "cpus", "runc", "containerd", "containerd CRI", "nodekit", "nodekit binaries", "critest", "repository"} {
		if v, ok := res.Env[k]; ok {
			fmt.Fprintf(w, "- %s: %s\n", k, v)
		}
	}
	fmt.Fprintf(w, "- load average before/after: %s / %s\n", res.LoadBefore, res.LoadAfter)
	fmt.Fprintf(w, "- critest params: podsNumber %d, containersNumber %d, both sequential (parallel 1); %d run(s) per runtime, alternating which goes first; samples pooled\n",
		res.Params["podsNumber"], res.Params["containersNumber"], res.Rounds)
	for _, rt := range res.Runtimes {
		if p, ok := res.Pulls[rt]; ok {
			fmt.Fprintf(w, "- %s pulled %s in %s before the runs (not measured by critest)\n", rt, critestImage, p)
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "- note: %s\n", n)
	}

	two := len(res.Runtimes) == 2 && res.Runtimes[0] == "nodekit" && res.Runtimes[1] == "containerd"
	fmt.Fprintf(w, "\n### Lifecycle operations (ms)\n\n")
	head := []string{"benchmark", "operation", "CRI calls", "n"}
	for _, rt := range res.Runtimes {
		head = append(head, rt+" p50", rt+" p95")
	}
	if two {
		head = append(head, "nodekit / containerd p50", fmt.Sprintf("≤ %.1f", opTargetRatio))
	}
	rows := [][]string{head}
	for _, o := range res.Ops {
		n := 0
		row := []string{o.Benchmark, o.Operation, o.Calls, ""}
		for _, rt := range res.Runtimes {
			s := o.Runtimes[rt]
			n = max(n, s.N)
			row = append(row, ms(s.P50), ms(s.P95))
		}
		row[3] = fmt.Sprint(n)
		if two {
			nk, ctd := o.Runtimes["nodekit"], o.Runtimes["containerd"]
			r := ratio(float64(nk.P50), float64(ctd.P50))
			met := "-"
			if o.Operation != lifecycleSum && nk.N > 0 && ctd.N > 0 {
				met = "yes"
				if float64(nk.P50) > opTargetRatio*float64(ctd.P50) {
					met = "**no**"
				}
			}
			row = append(row, r, met)
		}
		rows = append(rows, row)
	}
	mdtable.Write(w, rows)

	// Stability: p50 of each operation in each critest run.
	if len(res.Runs) > len(res.Runtimes) {
		fmt.Fprintf(w, "\n### p50 per critest run (ms)\n\n")
		head := []string{"operation"}
		for _, run := range res.Runs {
			head = append(head, fmt.Sprintf("%s #%d", run.Runtime, run.Round))
		}
		rows := [][]string{head}
		for _, b := range critestBenchmarks {
			for i, op := range b.ops {
				row := []string{op.name}
				for _, run := range res.Runs {
					var d []time.Duration
					for _, c := range run.Ops[b.key] {
						d = append(d, msDuration(c[i]))
					}
					row = append(row, ms(summarize(d).P50))
				}
				rows = append(rows, row)
			}
		}
		mdtable.Write(w, rows)
	}

	fmt.Fprintf(w, "\n### Pod + container from scratch (critest's third benchmark: RunPodSandbox, CreateContainer, StartContainer, StopPodSandbox, RemovePodSandbox; one sample per run)\n\n")
	rows = [][]string{{"runtime", "n", "p50", "min", "max"}}
	for _, rt := range res.Runtimes {
		s := res.Scratch[rt]
		rows = append(rows, []string{rt, fmt.Sprint(s.N), ms(s.P50), ms(s.Min), ms(s.Max)})
	}
	mdtable.Write(w, rows)

	if len(res.Exits) > 0 {
		fmt.Fprintf(w, "\n### Exit latency: SIGKILL of the container's init → the client knows (ms)\n\n")
		rows = [][]string{{"runtime", "method", "n", "p50", "p95", "p99", "max", "missed", "kill → event created_at p50 / p99"}}
		for _, e := range res.Exits {
			if !e.Supported {
				rows = append(rows, []string{e.Runtime, e.Method, "-", "-", "-", "-", "-", "-", e.Note})
				continue
			}
			server := "-"
			if e.Method == "events" && e.Server.N > 0 {
				server = ms3(e.Server.P50) + " / " + ms3(e.Server.P99)
			}
			rows = append(rows, []string{e.Runtime, e.Method, fmt.Sprint(e.Latency.N), ms3(e.Latency.P50), ms3(e.Latency.P95), ms3(e.Latency.P99), ms3(e.Latency.Max), fmt.Sprint(e.Missed), server})
		}
		mdtable.Write(w, rows)
		fmt.Fprintln(w, "\nevents: GetContainerEvents, time until the CONTAINER_STOPPED event reached the client; status: ContainerStatus polled every -exit-poll until EXITED (includes up to one interval of polling delay). For context, the kubelet's generic PLEG relists every 1 s: without events an exit reaches it after 0–1 s (≈ 500 ms on average) plus the relist.")
	}

	reportTargets(w, res.Targets)
	for _, f := range res.Failures {
		fmt.Fprintf(w, "FAILED: %s\n", strings.SplitN(f, "\n", 2)[0])
	}
}

// ms3 formats a duration in milliseconds with two decimals (exit latencies are small).
func ms3(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}
