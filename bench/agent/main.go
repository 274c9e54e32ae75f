// Command agent benchmarks nodekit's node agent on the real CRI shim, in one run
// on one machine:
//
//   - (a) exits: container exit → pod status updated, over 100 exits, with the
//     evented PLEG and with the generic one (an in-process shim and agent, the
//     agent's status sink timestamping every Put; exits.go);
//   - (b) idle: CPU and memory of bin/nodekit-kubelet (agent + embedded shim in
//     one process) and of its nodekit-monitor children with 100 idle static
//     pods over 60 s, evented and generic, then relist durations
//     (relisttime.Measure: a generic PLEG timed through its metrics) at 100 and 250 pods (idle.go);
//   - (c) eviction: memory threshold crossed → hog killed; (d) image GC
//     (eviction.go);
//   - (e) volumes: manifest → container running for a pod with six volumes
//     against the same pod without, interleaved, and configMap update → new
//     content visible in a running container (volumes.go);
//   - exitcost (not in the default -parts): what one container exit costs
//     nodekit-kubelet — CRI calls by operation type, CPU of the process — for
//     an old build (-old-bin) against the new one (-bin), 30 exits per build
//     with restartPolicy Never and 30 with Always, in rounds old/new then
//     new/old, each against a baseline window without exits (exitcost.go);
//     `make bench-exitcost OLD=<commit>` builds the old nodekit-kubelet and
//     the old bench/agent in a git worktree and also runs part (a) with both
//     programs, for exit → status before and after. Issue 11, item 3 (pod
//     workers read the PLEG cache; 677bdb5 against 07fdde1, two runs on a
//     quiet machine, 2026-12-07): CRI calls per exit 13.0 → 5.0 (Never) and
//     11.0 → 7.0 (Always); CPU of nodekit-kubelet per exit 12.8–13.3 →
//     10.2–10.5 ms (Never), 17 ms both (Always: within the spread between
//     rounds); exit → status p99, evented, 20.5 → 16.0 and 14.6 → 8.8 ms (no
//     regression), the agent's share of the p50 2.1 → 0.5 ms;
//
// and prints the figures as Markdown tables with the targets.
//
// Run it as root from the repository root after `make build images`:
//
//	sudo go run ./bench/agent [-parts exits,idle,eviction,imagegc,volumes] [-plegs evented,generic] [-exits 100] [-pods 100] [-window 60s] [-volume-runs 30]
//	sudo go run ./bench/agent -parts exitcost -old-bin DIR [-exitcost-pods 30] [-exitcost-policies Never,Always] [-exitcost-rounds 2]
//
// or `sudo make bench-agent`, `sudo make bench-exitcost OLD=<commit>`. Everything it creates lives in /tmp/nkagent-<id>,
// under the cgroup /nkagent-<id> and on a bridge of its own, and is removed on
// exit, failure or interrupt; `-cleanup /tmp/nkagent-<id>` does it after a
// SIGKILL. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nodekit-dev/nodekit/bench/internal/interrupt"
	"github.com/nodekit-dev/nodekit/bench/internal/mdtable"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
)

type options struct {
	bin, images string
	parts       map[string]bool
	plegs       []string
	exits       exitOptions
	// evictionRuns: hogs evicted in part (c).
	evictionRuns int
	idle         idleOptions
	volumes      volumeOptions
	exitCost     exitCostOptions
	jsonOut      string
	logs         string
	cleanup      string
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	var o options
	var parts, plegs, policies string
	fs.StringVar(&o.bin, "bin", "bin", "directory with nodekit-kubelet, nodekit-monitor and runc")
	fs.StringVar(&o.images, "images", "_output/images", "directory with busybox.tar")
	fs.StringVar(&parts, "parts", "exits,idle,eviction,imagegc,volumes", "what to measure: exits (a), idle (b, with the relist durations), eviction (c), imagegc (d), volumes (e); exitcost (CRI calls and CPU per exit, -old-bin against -bin; not in the default)")
	fs.IntVar(&o.evictionRuns, "eviction-runs", 20, "(c) memory hogs evicted")
	fs.IntVar(&o.volumes.runs, "volume-runs", 30, "(e) pods started with the six volumes and without, each (interleaved, after a warm-up pair)")
	fs.IntVar(&o.volumes.updates, "volume-updates", 30, "(e) configMap updates timed to a running pod")
	fs.StringVar(&plegs, "plegs", "evented,generic", "PLEGs to measure, in this order")
	fs.IntVar(&o.exits.n, "exits", 100, "(a) containers killed per PLEG (one pod each)")
	fs.DurationVar(&o.exits.gap, "exit-gap", 100*time.Millisecond, "(a) least pause before each kill")
	fs.DurationVar(&o.exits.jitter, "exit-jitter", time.Second, "(a) plus a random pause up to this, so kills fall anywhere in the generic PLEG's relist period")
	fs.DurationVar(&o.exits.timeout, "exit-timeout", 10*time.Second, "(a) wait this long for the status of one exit")
	fs.StringVar(&o.exits.cpuProfile, "cpuprofile", "", "(a) write a CPU profile of this process (shim + agent + benchmark) during the evented exits")
	fs.IntVar(&o.idle.pods, "pods", 100, "(b) idle static pods")
	fs.DurationVar(&o.idle.window, "window", 60*time.Second, "(b) sampling window")
	fs.DurationVar(&o.idle.settle, "settle", 10*time.Second, "(b) wait after the pods run, before sampling")
	fs.IntVar(&o.idle.scalePods, "scale-pods", 250, "(b) then grow to this many pods for the second relist measurement (0: no)")
	fs.DurationVar(&o.idle.scaleWindow, "scale-window", 60*time.Second, "(b) sampling window at -scale-pods (0: none)")
	fs.IntVar(&o.idle.relistRuns, "relist-runs", 5, "(b) relisttime.Measure calls per pod count (each: one cold relist, then warm ones; 0: none)")
	fs.IntVar(&o.idle.relistWarm, "relist-warm", 20, "(b) warm relists per relisttime.Measure call")
	fs.StringVar(&o.exitCost.oldBin, "old-bin", "", "(exitcost) directory with the old nodekit-kubelet (runc and nodekit-monitor come from -bin)")
	fs.IntVar(&o.exitCost.pods, "exitcost-pods", 30, "(exitcost) static pods per kubelet run, one exit each")
	fs.StringVar(&policies, "exitcost-policies", "Never,Always", "(exitcost) restart policies of the pods, one kubelet run per build each")
	fs.DurationVar(&o.exitCost.gap, "exitcost-gap", 300*time.Millisecond, "(exitcost) pause after the agent finished with an exit, before the next kill")
	fs.DurationVar(&o.exitCost.baseline, "exitcost-baseline", 20*time.Second, "(exitcost) the window without kills")
	fs.DurationVar(&o.exitCost.settle, "exitcost-settle", 10*time.Second, "(exitcost) wait after the pods run, before the baseline")
	fs.IntVar(&o.exitCost.rounds, "exitcost-rounds", 2, "(exitcost) rounds per policy: old then new, then new then old (a drift of the background load falls on both alike), ...")
	fs.DurationVar(&o.exitCost.syncFrequency, "exitcost-sync-frequency", 10*time.Minute, "(exitcost) the kubelets' syncFrequency (long: no periodic resync in the windows)")
	fs.DurationVar(&o.exitCost.timeout, "exitcost-timeout", 20*time.Second, "(exitcost) wait this long for the agent to finish with one exit")
	fs.StringVar(&o.exitCost.oldExits, "old-exits", "", "(exitcost) the -json file of the old program's `-parts exits` run: its exit → status latency is printed beside this run's")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.logs, "logs", "", "copy the agents', kubelets' and shims' logs here before cleaning up (default: only after a failure, to /tmp/nkagent-<id>.logs)")
	fs.StringVar(&o.cleanup, "cleanup", "", "do not measure: clean up after a run that was killed (its workspace `/tmp/nkagent-<id>`)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.parts = map[string]bool{}
	for _, p := range strings.Split(parts, ",") {
		switch p = strings.TrimSpace(p); p {
		case "exits", "idle", "eviction", "imagegc", "volumes", "exitcost":
			o.parts[p] = true
		case "":
		default:
			return o, fmt.Errorf("-parts: unknown %q (want exits, idle, eviction, imagegc, volumes, exitcost)", p)
		}
	}
	for _, p := range strings.Split(policies, ",") {
		switch p = strings.TrimSpace(p); p {
		case string(v1.RestartPolicyNever), string(v1.RestartPolicyAlways), string(v1.RestartPolicyOnFailure):
			o.exitCost.policies = append(o.exitCost.policies, v1.RestartPolicy(p))
		case "":
		default:
			return o, fmt.Errorf("-exitcost-policies: unknown %q (want Never, Always, OnFailure)", p)
		}
	}
	for _, p := range strings.Split(plegs, ",") {
		switch p = strings.TrimSpace(p); p {
		case "evented", "generic":
			o.plegs = append(o.plegs, p)
		case "":
		default:
			return o, fmt.Errorf("-plegs: unknown %q (want evented, generic)", p)
		}
	}
	switch {
	case o.exits.n < 1:
		return o, fmt.Errorf("-exits: want at least 1, got %d", o.exits.n)
	case o.idle.pods < 1:
		return o, fmt.Errorf("-pods: want at least 1, got %d", o.idle.pods)
	case o.idle.window < time.Second:
		return o, fmt.Errorf("-window: want at least 1s, got %s", o.idle.window)
	case o.exits.gap < 0 || o.exits.jitter < 0:
		return o, fmt.Errorf("-exit-gap, -exit-jitter: must not be negative")
	case o.volumes.runs < 1 || o.volumes.updates < 1:
		return o, fmt.Errorf("-volume-runs, -volume-updates: want at least 1, got %d, %d", o.volumes.runs, o.volumes.updates)
	case o.parts["exitcost"] && o.exitCost.oldBin == "":
		return o, errors.New("-parts exitcost needs -old-bin (a directory with the old nodekit-kubelet)")
	case o.exitCost.pods < 1 || o.exitCost.rounds < 1 || len(o.exitCost.policies) == 0:
		return o, fmt.Errorf("-exitcost-pods, -exitcost-rounds: want at least 1, got %d, %d; -exitcost-policies: want one", o.exitCost.pods, o.exitCost.rounds)
	case o.exitCost.baseline < time.Second || o.exitCost.syncFrequency < time.Second || o.exitCost.gap < 0:
		return o, errors.New("-exitcost-baseline, -exitcost-sync-frequency: want at least 1s; -exitcost-gap: must not be negative")
	}
	var err error
	if o.bin, err = filepath.Abs(o.bin); err != nil {
		return o, err
	}
	if o.images, err = filepath.Abs(o.images); err != nil {
		return o, err
	}
	if o.exitCost.oldBin != "" {
		if o.exitCost.oldBin, err = filepath.Abs(o.exitCost.oldBin); err != nil {
			return o, err
		}
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench/agent:", err)
		os.Exit(2)
	}
	os.Exit(run(o))
}

// results is everything one run measured.
type results struct {
	Workspace  string            `json:"workspace"`
	Bridge     string            `json:"bridge,omitempty"`
	Started    string            `json:"started"`
	Finished   string            `json:"finished"`
	Env        map[string]string `json:"environment"`
	LoadBefore string            `json:"loadavg_before"`
	LoadAfter  string            `json:"loadavg_after"`
	Exits      []*exitResult     `json:"exits"`
	Idle       []*idleResult     `json:"idle"`
	Eviction   *evictionResult   `json:"eviction,omitempty"`
	ImageGC    *imageGCResult    `json:"imagegc,omitempty"`
	Volumes    *volumesResult    `json:"volumes,omitempty"`
	ExitCost   *exitCostResult   `json:"exitcost,omitempty"`
	Targets    []target          `json:"targets"`
	Errors     []string          `json:"errors,omitempty"`
}

func run(o options) (code int) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench/agent: needs root (runc, overlayfs, cgroups, CNI): run `sudo make bench-agent`")
		return 2
	}
	if o.cleanup != "" {
		interrupt.Ignore()
		w, err := existingWorkspace(o.cleanup, o.bin, os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/agent:", err)
			return 2
		}
		w.cleanup()
		return 0
	}
	need := []string{filepath.Join(o.bin, "runc"), filepath.Join(o.bin, "nodekit-monitor"), filepath.Join(o.images, "busybox.tar")}
	if o.parts["idle"] || o.parts["exitcost"] {
		need = append(need, filepath.Join(o.bin, "nodekit-kubelet"))
	}
	if o.parts["exitcost"] {
		need = append(need, filepath.Join(o.exitCost.oldBin, "nodekit-kubelet"))
	}
	for _, f := range need {
		if _, err := os.Stat(f); err != nil {
			fmt.Fprintf(os.Stderr, "bench/agent: %v (run `make build images` first)\n", err)
			return 2
		}
	}

	klog.SetSlogLogger(discardLogger)
	// Signals cancel the run; cleanup always runs to the end (a second ^C does
	// not abort it, which would leave containers, mounts and cgroups behind).
	ctx, cancel := interrupt.Context(context.Background(), "bench/agent", os.Stderr)
	defer cancel()

	w, err := newWorkspace(o.bin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/agent:", err)
		return 1
	}
	fmt.Printf("workspace %s, cgroup %s\n", w.dir, w.cgroup)
	res := &results{Workspace: w.dir, Started: time.Now().UTC().Format(time.RFC3339), LoadBefore: loadavg(), Env: environment(o)}
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "bench/agent: panic: %v\n%s", p, debug.Stack())
			code = 2
		}
		res.Bridge = w.meta.Bridge
		if w.net != nil {
			res.Env["pod network"] = fmt.Sprintf("CNI bridge %s, %s (bridge + host-local + loopback; no masquerading, no port mappings)", w.net.name, w.net.subnet)
		}
		if logs := o.logs; logs != "" || len(res.Errors) > 0 || code != 0 {
			if logs == "" {
				logs = w.dir + ".logs"
			}
			if n, err := w.copyLogs(logs); err != nil {
				fmt.Fprintf(os.Stderr, "bench/agent: keeping the logs: %v\n", err)
			} else {
				fmt.Printf("%d log files copied to %s\n", n, logs)
			}
		}
		w.cleanup()
		res.Finished = time.Now().UTC().Format(time.RFC3339)
		res.LoadAfter = loadavg()
		res.Targets = evaluate(res)
		report(os.Stdout, res)
		if o.jsonOut != "" {
			if err := writeJSON(o.jsonOut, res); err != nil {
				fmt.Fprintln(os.Stderr, "bench/agent:", err)
			} else {
				fmt.Printf("\nresults written to %s\n", o.jsonOut)
			}
		}
		if len(res.Errors) > 0 && code == 0 {
			code = 1
		}
	}()

	if o.parts["exits"] {
		r, err := measureExits(ctx, w, o)
		res.Exits = r
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			fmt.Fprintln(os.Stderr, "bench/agent:", err)
			return 1
		}
	}
	if o.parts["exitcost"] {
		r, err := measureExitCost(ctx, w, o)
		res.ExitCost = r
		if r != nil && o.exitCost.oldExits != "" {
			r.OldExitsFile = o.exitCost.oldExits
			if r.OldExits, err = readOldExits(o.exitCost.oldExits); err != nil {
				res.Errors = append(res.Errors, err.Error())
			}
		}
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			fmt.Fprintln(os.Stderr, "bench/agent:", err)
			return 1
		}
	}
	if o.parts["idle"] {
		r, err := measureIdle(ctx, w, o)
		res.Idle = r
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			fmt.Fprintln(os.Stderr, "bench/agent:", err)
			return 1
		}
	}
	if o.parts["eviction"] {
		r, err := measureEviction(ctx, w, o)
		res.Eviction = r
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			fmt.Fprintln(os.Stderr, "bench/agent:", err)
			return 1
		}
	}
	if o.parts["imagegc"] {
		r, err := measureImageGC(ctx, w, o)
		res.ImageGC = r
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			fmt.Fprintln(os.Stderr, "bench/agent:", err)
			return 1
		}
	}
	if o.parts["volumes"] {
		r, err := measureVolumes(ctx, w, o)
		if err != nil {
			// No figures from a run that failed half way.
			err = fmt.Errorf("volumes: %w", err)
			res.Errors = append(res.Errors, err.Error())
			fmt.Fprintln(os.Stderr, "bench/agent:", err)
			return 1
		}
		res.Volumes = r
	}
	return 0
}

// target is one of the targets, evaluated on this run.
type target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Limit float64 `json:"limit"`
	Met   bool    `json:"met"`
}

func evaluate(res *results) []target {
	var out []target
	add := func(name string, v, limit float64, unit string) {
		out = append(out, target{Name: name, Value: v, Unit: unit, Limit: limit, Met: v <= limit})
	}
	for _, e := range res.Exits {
		if e.PLEG == "evented" && e.Latency.N > 0 {
			add("exit → status p99, evented PLEG", float64(e.Latency.P99)/1e6, 50, "ms")
		}
	}
	for _, r := range res.Idle {
		for _, s := range r.Samples {
			if s.Pods != 100 {
				continue
			}
			add(fmt.Sprintf("agent + shim CPU, %d pods, %s PLEG", s.Pods, r.PLEG), s.KubeletCores, 0.05, "cores")
			add(fmt.Sprintf("agent + shim RSS, %d pods, %s PLEG", s.Pods, r.PLEG), float64(s.Kubelet.Rss)/1024, 100, "MiB")
		}
	}
	if e := res.Eviction; e != nil && e.Latency.N > 0 {
		add("memory threshold crossed → hog killed p50 (kubelet: up to 10 s)", float64(e.Latency.P50)/1e6, 1000, "ms")
		add("memory threshold crossed → hog killed p95", float64(e.Latency.P95)/1e6, 1000, "ms")
	}
	if v := res.Volumes; v != nil && v.With.N > 0 && v.Without.N > 0 {
		p50, p95 := v.overhead()
		add("six volumes: manifest → running overhead p50 (kubelet: ≈ 280 ms for one hostPath, per the issue)", float64(p50)/1e6, 10, "ms")
		add("six volumes: manifest → running overhead p95", float64(p95)/1e6, 10, "ms")
	}
	return out
}

// report prints the results as Markdown tables.
func report(w io.Writer, res *results) {
	fmt.Fprintf(w, "\n## Results (%s)\n\n", res.Started)
	for _, k := range []string{"kernel", "cpu", "cpus", "repository", "nodekit-kubelet", "old nodekit-kubelet", "pod network"} {
		if v, ok := res.Env[k]; ok {
			fmt.Fprintf(w, "- %s: %s\n", k, v)
		}
	}
	fmt.Fprintf(w, "- load average before/after: %s / %s\n", res.LoadBefore, res.LoadAfter)
	reportExits(w, res.Exits)
	reportIdle(w, res.Idle)
	if e := res.Eviction; e != nil && e.Latency.N > 0 {
		fmt.Fprintf(w, "\n### Eviction reaction (memory.available < %s, %d runs)\n\n", e.Threshold, e.Runs)
		fmt.Fprintln(w, "| p50 | p95 | min | max |\n|---|---|---|---|")
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", e.Latency.P50.Round(time.Millisecond), e.Latency.P95.Round(time.Millisecond),
			e.Latency.Min.Round(time.Millisecond), e.Latency.Max.Round(time.Millisecond))
	}
	if g := res.ImageGC; g != nil {
		fmt.Fprintf(w, "\n### Image GC\n\n%d unused images, %d MiB: freed %d MiB in %.3f s (%.0f MiB/s); the in-use image kept: %v\n",
			g.Images, g.UnusedBytes>>20, g.FreedBytes>>20, g.Seconds, float64(g.FreedBytes>>20)/g.Seconds, g.InUseKept)
	}
	reportVolumes(w, res.Volumes)
	reportExitCost(w, res.ExitCost, res.Exits)
	reportTargets(w, res.Targets)
	for _, e := range res.Errors {
		fmt.Fprintf(w, "\nERROR: %s\n", e)
	}
}

func reportExits(w io.Writer, results []*exitResult) {
	exits := 0
	for _, e := range results {
		exits += e.Latency.N
	}
	if exits == 0 {
		return
	}
	fmt.Fprintf(w, "\n### (a) Container exit → pod status updated (ms)\n\n")
	rows := [][]string{{"PLEG", "exits", "p50", "p90", "p95", "p99", "max", "kill → CRI event p50 / p99", "relists during", "status Puts", "start pods"}}
	for _, e := range results {
		name := e.PLEG
		if e.PLEG == "evented" && !e.Evented {
			name += " (NOT verified: stream errors or no stream)"
		}
		rows = append(rows, []string{name, fmt.Sprint(e.Latency.N), ms(e.Latency.P50), ms(e.Latency.P90), ms(e.Latency.P95),
			ms(e.Latency.P99), ms(e.Latency.Max), ms(e.CRIEvent.P50) + " / " + ms(e.CRIEvent.P99),
			fmt.Sprintf("%d in %.0f s", e.Relists, e.Seconds), fmt.Sprint(e.StatusPuts), fmt.Sprintf("%d in %s", e.Pods, e.StartPods)})
	}
	mdtable.Write(w, rows)
	for _, e := range results {
		if e.Missed > 0 {
			fmt.Fprintf(w, "%s: %d exits missed\n", e.PLEG, e.Missed)
		}
	}
}

func reportIdle(w io.Writer, results []*idleResult) {
	samples, relists := 0, 0
	for _, r := range results {
		samples += len(r.Samples)
		relists += len(r.Relists)
	}
	if samples > 0 {
		fmt.Fprintf(w, "\n### (b) Idle CPU of bin/nodekit-kubelet (agent + embedded shim) and its monitors (cores)\n\n")
		rows := [][]string{{"PLEG", "pods", "window s", "kubelet (user + sys)", "waited children", "monitors (all)", "kubelet ctx switches/s", "relists", "relist mean ms", "pod syncs/s"}}
		for _, r := range results {
			for _, s := range r.Samples {
				rows = append(rows, []string{r.PLEG, fmt.Sprint(s.Pods), fmt.Sprintf("%.1f", s.Seconds),
					fmt.Sprintf("%.4f (%.4f + %.4f)", s.KubeletCores, s.KubeletUser, s.KubeletSys), fmt.Sprintf("%.4f", s.ChildrenCores),
					fmt.Sprintf("%.4f", s.MonitorCores), fmt.Sprintf("%.0f", s.Wakeups),
					fmt.Sprintf("%.0f", s.Relists), fmt.Sprintf("%.2f", s.RelistMeanMs), fmt.Sprintf("%.2f", s.SyncsPerS)})
			}
		}
		mdtable.Write(w, rows)
		fmt.Fprintf(w, "\n### (b) Memory at the end of the window (MiB)\n\n")
		rows = [][]string{{"PLEG", "pods", "kubelet RSS", "kubelet Pss", "kubelet anon", "kubelet threads (blocked in)", "monitors", "monitors Pss (per pod)", "monitors RSS (per pod)"}}
		for _, r := range results {
			for _, s := range r.Samples {
				per := func(kib uint64) string {
					if s.Monitors == 0 {
						return "-"
					}
					return mib(float64(kib) / float64(s.Monitors))
				}
				rows = append(rows, []string{r.PLEG, fmt.Sprint(s.Pods),
					mib(float64(s.Kubelet.Rss)), mib(float64(s.Kubelet.Pss)), mib(float64(s.Kubelet.Anon)), fmt.Sprintf("%d (%s)", s.Threads, s.ThreadSyscalls), fmt.Sprint(s.Monitors),
					fmt.Sprintf("%s (%s)", mib(float64(s.MonitorsMem.Pss)), per(s.MonitorsMem.Pss)),
					fmt.Sprintf("%s (%s)", mib(float64(s.MonitorsMem.Rss)), per(s.MonitorsMem.Rss))})
			}
		}
		mdtable.Write(w, rows)
		fmt.Fprintln(w)
		for _, r := range results {
			fmt.Fprintf(w, "- %s PLEG: pods running %s after start", r.PLEG, r.StartPods)
			if r.ScalePods != "" {
				fmt.Fprintf(w, ", the extra pods %s after their manifests", r.ScalePods)
			}
			if r.Stop != "" {
				fmt.Fprintf(w, "; SIGTERM → every pod stopped and the kubelet gone: %s", r.Stop)
			}
			fmt.Fprintln(w)
		}
	}
	if relists > 0 {
		fmt.Fprintf(w, "\n### Relist duration (a generic PLEG against the kubelet's runtime socket, ms)\n\n")
		rows := [][]string{{"during", "pods", "runs", "cold p50", "cold min", "cold max", "warm p50", "warm min", "warm max"}}
		for _, r := range results {
			for _, x := range r.Relists {
				rows = append(rows, []string{r.PLEG + " run", fmt.Sprint(x.Pods), fmt.Sprint(x.Cold.N), ms(x.Cold.P50), ms(x.Cold.Min), ms(x.Cold.Max),
					ms(x.Warm.P50), ms(x.Warm.Min), ms(x.Warm.Max)})
			}
		}
		mdtable.Write(w, rows)
	}

}

func reportTargets(w io.Writer, targets []target) {
	if len(targets) > 0 {
		fmt.Fprintf(w, "\n### Targets\n\n")
		rows := [][]string{{"target", "measured", "limit", "met"}}
		for _, t := range targets {
			met := "yes"
			if !t.Met {
				met = "**no**"
			}
			rows = append(rows, []string{t.Name, fmt.Sprintf("%.3f %s", t.Value, t.Unit), fmt.Sprintf("%g %s", t.Limit, t.Unit), met})
		}
		mdtable.Write(w, rows)
	}
}

func writeJSON(path string, res *results) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func loadavg() string {
	s, err := procfs.LoadAvg()
	if err != nil {
		return "?"
	}
	return s
}

// environment describes the machine and the build.
func environment(o options) map[string]string {
	env := map[string]string{}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		env["kernel"] = strings.TrimSpace(string(out))
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n := 0
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				if strings.TrimSpace(k) == "model name" {
					env["cpu"] = strings.TrimSpace(v)
				}
				if strings.TrimSpace(k) == "processor" {
					n++
				}
			}
		}
		env["cpus"] = fmt.Sprint(n)
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		v := strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			v += " (with uncommitted changes)"
		}
		env["repository"] = v
	}
	if fi, err := os.Stat(filepath.Join(o.bin, "nodekit-kubelet")); err == nil {
		env["nodekit-kubelet"] = fmt.Sprintf("%s, built %s", filepath.Join(o.bin, "nodekit-kubelet"), fi.ModTime().UTC().Format(time.RFC3339))
	}
	if o.parts["exitcost"] {
		if fi, err := os.Stat(filepath.Join(o.exitCost.oldBin, "nodekit-kubelet")); err == nil {
			env["old nodekit-kubelet"] = fmt.Sprintf("%s, built %s", filepath.Join(o.exitCost.oldBin, "nodekit-kubelet"), fi.ModTime().UTC().Format(time.RFC3339))
		}
	}
	return env
}
