package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nodekit-dev/nodekit/bench/internal/mdtable"
	"github.com/nodekit-dev/nodekit/bench/internal/stats"
)

// report prints the latency table, the idle table and the request kinds,
// each with nodekit's ratios to every kubelet measured.
func report(w io.Writer, res *results) {
	if len(res.Agents) == 0 {
		return
	}
	fmt.Fprintln(w)
	mdtable.Write(w, latencyTable(res.Agents))
	if t := idleTable(res.Agents); t != nil {
		fmt.Fprintln(w)
		mdtable.Write(w, t)
		fmt.Fprintln(w)
		mdtable.Write(w, kindsTable(res.Agents, 8))
	}
	fmt.Fprintln(w)
	for _, a := range res.Agents {
		if len(a.Load) > 0 {
			fmt.Fprintf(w, "load average, %s: %s\n", a.Label, strings.Join(a.Load, "; "))
		}
	}
}

// ratio formats a/b ("0.42×"), or "–" when either is missing.
func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// latencyTable: per agent the p50 and p99 (nearest rank: of 50 samples the
// largest) of create → Running, create → Ready, exit → container terminated
// and exit → Succeeded, in ms, then nodekit / each kubelet.
func latencyTable(agents []*agentResult) [][]string {
	rows := [][]string{{"ms (n)", "create → Running p50", "p99", "create → Ready p50", "p99",
		"exit → container terminated p50", "p99", "exit → Succeeded p50", "p99"}}
	figs := func(a *agentResult) []time.Duration {
		return []time.Duration{a.CreateRunning.P50, a.CreateRunning.P99, a.CreateReady.P50, a.CreateReady.P99,
			a.ExitTerminated.P50, a.ExitTerminated.P99, a.ExitSucceeded.P50, a.ExitSucceeded.P99}
	}
	for _, a := range agents {
		row := []string{fmt.Sprintf("%s (%d)", a.Label, a.CreateRunning.N)}
		for _, d := range figs(a) {
			row = append(row, cell(d))
		}
		rows = append(rows, row)
	}
	nk := find(agents, agentNodekit)
	for _, k := range agents {
		if nk == nil || k.Agent == agentNodekit {
			continue
		}
		row := []string{"nodekit / " + k.Label}
		a, b := figs(nk), figs(k)
		for i := range a {
			row = append(row, ratio(stats.Millis(a[i]), stats.Millis(b[i])))
		}
		rows = append(rows, row)
	}
	return rows
}

func cell(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return ms(d)
}

func find(agents []*agentResult, kind string) *agentResult {
	for _, a := range agents {
		if a.Agent == kind {
			return a
		}
	}
	return nil
}

// idleFigures are an idle result's columns: API requests and watches per
// minute, then cores and Pss (MiB) of the agent, the runtime, the helpers
// and all together, and the agent's RSS.
func idleFigures(r *idleResult) []float64 {
	var cores, pss [4]float64 // agent, runtime, helpers, total
	var agentRss float64
	for _, g := range r.Groups {
		i := map[string]int{"agent": 0, "runtime": 1, "helpers": 2}[g.Role]
		c := g.Cores + g.ChildrenCores
		cores[i] += c
		cores[3] += c
		pss[i] += float64(g.Mem.Pss) / 1024
		pss[3] += float64(g.Mem.Pss) / 1024
		if g.Role == "agent" {
			agentRss = float64(g.Mem.Rss) / 1024
		}
	}
	return []float64{r.Requests.PerMinute(), r.Requests.WatchesPerMinute(),
		cores[0], cores[1], cores[2], cores[3], agentRss, pss[0], pss[1], pss[2], pss[3]}
}

// idleTable: one row per agent with idle figures, then nodekit / each
// kubelet; nil when no agent has them.
func idleTable(agents []*agentResult) [][]string {
	rows := [][]string{{"idle pods, window", "API req/min (no watch)", "watches opened/min",
		"agent cores", "runtime cores", "helpers cores", "total cores",
		"agent RSS MiB", "agent Pss MiB", "runtime Pss", "helpers Pss", "total Pss"}}
	formats := []string{"%.1f", "%.2f", "%.4f", "%.4f", "%.4f", "%.4f", "%.1f", "%.1f", "%.1f", "%.1f", "%.1f"}
	var nk *agentResult
	for _, a := range agents {
		if a.Idle == nil || len(a.Idle.Groups) == 0 {
			continue
		}
		if a.Agent == agentNodekit {
			nk = a
		}
		row := []string{fmt.Sprintf("%s, %d pods, %.0f s", a.Label, a.Idle.Pods, a.Idle.Seconds)}
		for i, f := range idleFigures(a.Idle) {
			if (i == 3 || i == 8) && a.Agent == agentNodekit {
				row = append(row, "(in agent)")
				continue
			}
			row = append(row, fmt.Sprintf(formats[i], f))
		}
		rows = append(rows, row)
	}
	if len(rows) == 1 {
		return nil
	}
	for _, k := range agents {
		if nk == nil || k.Agent == agentNodekit || k.Idle == nil || len(k.Idle.Groups) == 0 {
			continue
		}
		row := []string{"nodekit / " + k.Label}
		a, b := idleFigures(nk.Idle), idleFigures(k.Idle)
		for i := range a {
			switch i {
			case 2: // nodekit's agent holds the runtime: compare with kubelet + runtime
				row = append(row, ratio(a[2], b[2]+b[3])+" of kubelet+runtime")
			case 7:
				row = append(row, ratio(a[7], b[7]+b[8])+" of kubelet+runtime")
			case 3, 8:
				row = append(row, "")
			default:
				row = append(row, ratio(a[i], b[i]))
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// kindsTable: the most frequent request kinds of each agent during the
// window, per minute.
func kindsTable(agents []*agentResult, n int) [][]string {
	rows := [][]string{{"agent", "most frequent requests in the window (per minute)"}}
	for _, a := range agents {
		if a.Idle == nil {
			continue
		}
		rows = append(rows, []string{a.Label, strings.Join(a.Idle.Requests.topKinds(n), "; ")})
	}
	return rows
}
