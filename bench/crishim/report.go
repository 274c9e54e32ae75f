package main

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/nodekit-dev/nodekit/bench/internal/mdtable"
)

// target is one of the targets, evaluated on this run.
type target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"` // the measured ratio
	Limit float64 `json:"limit"` // must be ≤ this
	Met   bool    `json:"met"`
}

// reportTargets prints the targets evaluated on this run, if any, as a table.
func reportTargets(w io.Writer, targets []target) {
	if len(targets) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### Targets\n\n")
	rows := [][]string{{"target", "measured", "met"}}
	for _, t := range targets {
		met := "yes"
		if !t.Met {
			met = "**no**"
		}
		rows = append(rows, []string{t.Name, fmt.Sprintf("%.3f", t.Value), met})
	}
	mdtable.Write(w, rows)
}

func evaluate(res *results) []target {
	var out []target
	add := func(name string, a, b time.Duration, limit float64) {
		if a == 0 || b == 0 {
			return
		}
		v := float64(a) / float64(b)
		out = append(out, target{Name: name, Value: v, Limit: limit, Met: v <= limit})
	}
	nk, ctd, fl := res.series("nodekit"), res.series("containerd"), res.series(res.Floor)
	if nk != nil && ctd != nil {
		add("nodekit p50 ≤ 0.7 × containerd p50 (pod+container running)", nk.Running.P50, ctd.Running.P50, 0.7)
		add("nodekit p50 ≤ 0.7 × containerd p50 (full cycle)", nk.Full.P50, ctd.Full.P50, 0.7)
	}
	if nk != nil && fl != nil {
		add("nodekit p50 ≤ 1.5 × floor p50 (full cycle: run + delete)", nk.Full.P50, fl.Full.P50, 1.5)
		add("nodekit p50 ≤ 1.5 × floor p50 (running vs `runc run -d`)", nk.Running.P50, fl.Running.P50, 1.5)
	}
	perPod := map[string]map[int]float64{}
	for _, m := range res.Memory {
		if perPod[m.Runtime] == nil {
			perPod[m.Runtime] = map[int]float64{}
		}
		perPod[m.Runtime][m.Pods] = m.HelperPerPod
	}
	var counts []int
	for n := range perPod["nodekit"] {
		if _, ok := perPod["containerd"][n]; ok {
			counts = append(counts, n)
		}
	}
	sort.Ints(counts)
	for _, n := range counts {
		if c := perPod["containerd"][n]; c > 0 {
			v := perPod["nodekit"][n] / c
			out = append(out, target{Name: fmt.Sprintf("monitor Pss per pod ≤ 0.3 × shim Pss per pod (%d pods)", n), Value: v, Limit: 0.3, Met: v <= 0.3})
		}
	}
	return out
}

// report prints the results as Markdown tables.
func report(w io.Writer, res *results) {
	fmt.Fprintf(w, "\n## Results (%s)\n\n", res.Started)
	for _, k := range []string{"kernel", "debian", "cpu", "cpus", "runc", "containerd", "containerd CRI", "nodekit", "nodekit binaries", "repository"} {
		if v, ok := res.Env[k]; ok {
			fmt.Fprintf(w, "- %s: %s\n", k, v)
		}
	}
	fmt.Fprintf(w, "- load average before/after: %s / %s\n", res.LoadBefore, res.LoadAfter)
	order := "interleaved (round-robin, order rotated each iteration)"
	if !res.Interleaved {
		order = "one runtime after the other"
	}
	fmt.Fprintf(w, "- %d measured iterations per runtime after 1 warm-up, %s\n", res.Iterations, order)
	for _, n := range res.Notes {
		fmt.Fprintf(w, "- note: %s\n", n)
	}

	fmt.Fprintf(w, "\n### Latency (ms)\n\n")
	rows := [][]string{{"runtime", "phase", "n", "p50", "p95", "min", "max"}}
	for _, s := range res.Series {
		title := s.Title
		if s.Key == res.Floor {
			title += " ← the floor"
		}
		rows = append(rows,
			[]string{title, "running", fmt.Sprint(s.Running.N), ms(s.Running.P50), ms(s.Running.P95), ms(s.Running.Min), ms(s.Running.Max)},
			[]string{"", "full cycle", fmt.Sprint(s.Full.N), ms(s.Full.P50), ms(s.Full.P95), ms(s.Full.Min), ms(s.Full.Max)})
	}
	mdtable.Write(w, rows)
	fmt.Fprintln(w, "\n\"running\": until `runc run -d` returns / RunPodSandbox+CreateContainer+StartContainer returned; \"full cycle\": until everything is removed again.")

	nk, ctd, fl := res.series("nodekit"), res.series("containerd"), res.series(res.Floor)
	fmt.Fprintf(w, "\n### Ratios of p50\n\n")
	rows = [][]string{{"ratio", "running", "full cycle"}}
	pair := func(name string, a, b *series) {
		if a != nil && b != nil {
			rows = append(rows, []string{name,
				ratio(float64(a.Running.P50), float64(b.Running.P50)), ratio(float64(a.Full.P50), float64(b.Full.P50))})
		}
	}
	floorName := "floor"
	if fl != nil {
		floorName = "floor (" + fl.Key[len("floor-"):] + ")"
	}
	pair("nodekit / containerd", nk, ctd)
	pair("nodekit / "+floorName, nk, fl)
	pair("containerd / "+floorName, ctd, fl)
	if len(rows) > 1 {
		mdtable.Write(w, rows)
	}

	fmt.Fprintf(w, "\n### Per step, p50 (p95) in ms\n\n")
	for _, s := range res.Series {
		if s.Full.N == 0 {
			continue
		}
		fmt.Fprintf(w, "%s: ", s.Title)
		for i, name := range s.StepNames {
			if i > 0 {
				fmt.Fprint(w, ", ")
			}
			if i < len(s.Steps) {
				fmt.Fprintf(w, "%s %s (%s)", name, ms(s.Steps[i].P50), ms(s.Steps[i].P95))
			}
		}
		fmt.Fprintln(w)
	}
	if nk != nil && ctd != nil && nk.Full.N > 0 && ctd.Full.N > 0 {
		fmt.Fprintln(w)
		rows = [][]string{{"RPC", "nodekit p50", "containerd p50", "nodekit / containerd"}}
		for i, name := range criSteps {
			rows = append(rows, []string{name, ms(nk.Steps[i].P50), ms(ctd.Steps[i].P50), ratio(float64(nk.Steps[i].P50), float64(ctd.Steps[i].P50))})
		}
		mdtable.Write(w, rows)
	}

	if len(res.Memory) > 0 {
		fmt.Fprintf(w, "\n### Memory (Pss, MiB)\n\n")
		rows = [][]string{{"runtime", "pods", "daemon + helpers", "daemon", "helpers", "helper per pod", "pause per pod (not in total)", "start all pods"}}
		for _, m := range res.Memory {
			helper := map[string]string{"nodekit": "monitors", "containerd": "shims"}[m.Runtime]
			pause := "-"
			if m.Pauses > 0 {
				pause = mib(float64(m.PausePss) / float64(m.Pods))
			}
			rows = append(rows, []string{m.Runtime, fmt.Sprint(m.Pods), mib(float64(m.TotalPss)), mib(float64(m.DaemonPss)),
				fmt.Sprintf("%s (%d %s)", mib(float64(m.HelpersPss)), m.Helpers, helper), mib(m.HelperPerPod), pause, m.StartDuration})
		}
		mdtable.Write(w, rows)
	}

	reportTargets(w, res.Targets)
	for _, s := range res.Series {
		for _, f := range s.Failures {
			fmt.Fprintf(w, "FAILED %s: %s\n", s.Key, f)
		}
	}
}
