// Command crishim benchmarks nodekit's CRI shim against its floor (runc alone) and
// against containerd 1.6 (Debian's), in one run on one machine:
//
//   - latency: 30 sequential pod life cycles per runtime (pod + one `sleep 3600`
//     container: run, start, stop, remove), p50/p95/min/max per phase and per RPC;
//   - memory: Pss of the daemon plus its per-pod helpers (nodekit-monitor,
//     containerd-shim-runc-v2) with 10 and 50 running one-container pods;
//   - the ratios the targets are stated in, and whether each target is met.
//
// With -mode critest it runs `critest -benchmark` (cri-tools' pod and container
// lifecycle benchmarks, same parameters, same images from a registry on 127.0.0.1)
// against both runtimes, prints per-operation p50/p95 and their ratios, and measures
// the exit-to-event latency of GetContainerEvents (critest.go, exits.go).
//
// Run it as root from the repository root after `make build images`:
//
//	sudo go run ./bench/crishim [-iterations 30] [-pods 10,50] [-bin bin] [-images _output/images] [-keep-going]
//
// or simply `sudo make bench`. Everything it creates lives in /tmp/nkbench-<id> and
// under the cgroup /nkbench-<id>, and is removed on exit, failure or interrupt. See
// bench/README.md for what is measured and how.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/nodekit-dev/nodekit/bench/internal/interrupt"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
)

type options struct {
	iterations int
	pods       []int
	bin        string
	images     string
	keepGoing  bool
	interleave bool
	settle     time.Duration
	jsonOut    string
	runtimes   map[string]bool
	stateTmpfs bool
	cleanup    string

	// -mode critest (critest.go, exits.go)
	mode    string // "lifecycle" or "critest"
	critest critestOptions
}

func parseFlags() (options, error) {
	var o options
	var pods, runtimes string
	flag.IntVar(&o.iterations, "iterations", 30, "measured iterations per runtime (plus one warm-up each)")
	flag.StringVar(&pods, "pods", "10,50", "pod counts for the memory measurement, comma-separated (empty: skip)")
	flag.StringVar(&o.bin, "bin", "bin", "directory with nodekit-cri, nodekit-monitor and runc")
	flag.StringVar(&o.images, "images", "_output/images", "directory with busybox.tar and pause.tar")
	flag.BoolVar(&o.keepGoing, "keep-going", false, "record failed iterations and go on instead of stopping at the first failure")
	flag.BoolVar(&o.interleave, "interleave", true, "run the runtimes' iterations round-robin (rotating the order) so background load hits all alike; false: one runtime after the other")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait after starting the pods before reading memory")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	flag.BoolVar(&o.stateTmpfs, "state-tmpfs", false, "keep nodekit's and containerd's state dirs on a tmpfs inside the workspace (as /run is on most distributions) instead of the workspace's own filesystem")
	flag.StringVar(&o.cleanup, "cleanup", "", "do not measure: clean up after an earlier run that was killed (its workspace `/tmp/nkbench-<id>`)")
	flag.StringVar(&runtimes, "runtimes", "floor,nodekit,containerd", "what to measure (subset of floor,nodekit,containerd)")
	flag.StringVar(&o.mode, "mode", "lifecycle", "lifecycle: the pod life cycle, floor and memory (below); critest: `critest -benchmark` against both CRI runtimes plus the exit-to-event latency (critest.go)")
	o.critest.register(flag.CommandLine)
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", flag.Args())
	}
	if o.iterations < 1 {
		return o, fmt.Errorf("-iterations: want at least 1, got %d", o.iterations)
	}
	for _, f := range strings.Split(pods, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return o, fmt.Errorf("-pods: bad count %q", f)
		}
		o.pods = append(o.pods, n)
	}
	o.runtimes = map[string]bool{}
	for _, r := range strings.Split(runtimes, ",") {
		switch r = strings.TrimSpace(r); r {
		case "floor", "nodekit", "containerd":
			o.runtimes[r] = true
		case "":
		default:
			return o, fmt.Errorf("-runtimes: unknown %q (want floor, nodekit, containerd)", r)
		}
	}
	var err error
	if o.bin, err = filepath.Abs(o.bin); err != nil {
		return o, err
	}
	if o.images, err = filepath.Abs(o.images); err != nil {
		return o, err
	}
	switch o.mode {
	case "lifecycle":
	case "critest":
		if err := o.critest.check(o.bin); err != nil {
			return o, err
		}
	default:
		return o, fmt.Errorf("-mode: unknown %q (want lifecycle or critest)", o.mode)
	}
	return o, nil
}

func main() {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "crishim:", err)
		os.Exit(2)
	}
	os.Exit(run(o))
}

func run(o options) (code int) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "crishim: needs root (runc, overlayfs, cgroups, containerd): run `sudo make bench`")
		return 2
	}
	if o.cleanup != "" {
		return cleanupOnly(o)
	}

	for _, f := range []string{filepath.Join(o.bin, "runc"), filepath.Join(o.bin, "nodekit-cri"), filepath.Join(o.bin, "nodekit-monitor"),
		filepath.Join(o.images, "busybox.tar"), filepath.Join(o.images, "pause.tar")} {
		if _, err := os.Stat(f); err != nil {
			fmt.Fprintf(os.Stderr, "crishim: %v (run `make build images` first)\n", err)
			return 2
		}
	}

	// Signals cancel the run; cleanup always runs to the end (a second ^C does not
	// abort it, which would leave containers, mounts and cgroups behind).
	ctx, cancel := interrupt.Context(context.Background(), "crishim", os.Stderr)
	defer cancel()

	w, err := newWorkspace(filepath.Join(o.bin, "runc"), os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crishim:", err)
		return 1
	}
	fmt.Printf("workspace %s, cgroup parent %s\n", w.dir, w.cgroup)
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "crishim: panic: %v\n%s", p, debug.Stack())
			code = 2
		}
		w.cleanup()
	}()

	if o.mode == "critest" {
		return critestMain(ctx, o, w)
	}
	res, err := measure(ctx, o, w)
	if res != nil {
		res.Finished = time.Now().UTC().Format(time.RFC3339)
		res.LoadAfter = loadavg()
		report(os.Stdout, res)
		saveResults(o.jsonOut, res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crishim:", err)
		return 1
	}
	if res.failures() > 0 {
		fmt.Fprintf(os.Stderr, "crishim: %d iterations failed (see above)\n", res.failures())
		return 1
	}
	return 0
}

// cleanupOnly is -cleanup: it removes what a killed run left behind.
func cleanupOnly(o options) int {
	interrupt.Ignore()
	w, err := existingWorkspace(o.cleanup, filepath.Join(o.bin, "runc"), os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crishim:", err)
		return 2
	}
	// containerd's pods in critest's /test.slice (-mode critest): their cgroups go
	// with them.
	w.foreign = append(w.foreign, newForeignCgroups("containerd", critestCgroupParent))
	// Daemons still serving get their pods removed through CRI first.
	for _, r := range []*criRuntime{
		{name: "nodekit", socket: w.path("nodekit", "cri.sock"), cgroup: w.cgroup + "/nodekit", ws: w},
		{name: "containerd", socket: w.containerdSocket(), cgroup: w.cgroup + "/containerd", ws: w},
	} {
		if _, err := os.Stat(r.socket); err != nil {
			continue
		}
		if err := r.dial(context.Background(), 2*time.Second); err != nil {
			r.close()
			continue
		}
		w.addRuntime(r)
	}
	w.cleanup()
	return 0
}

// sample is one timed iteration.
type sample struct {
	running time.Duration   // start → the container runs
	full    time.Duration   // start → everything removed
	steps   []time.Duration // each command or RPC
}

// series is one runtime's (or floor variant's) latency results.
type series struct {
	Key       string    `json:"key"`
	Title     string    `json:"title"`
	StepNames []string  `json:"step_names"`
	Running   summary   `json:"running"`
	Full      summary   `json:"full_cycle"`
	Steps     []summary `json:"steps"`
	Failures  []string  `json:"failures,omitempty"`

	samples []sample
	run     func(ctx context.Context, label string, verify bool) (sample, error)
}

func (s *series) summarize() {
	var running, full []time.Duration
	steps := make([][]time.Duration, len(s.StepNames))
	for _, x := range s.samples {
		running = append(running, x.running)
		full = append(full, x.full)
		for i, d := range x.steps {
			if i < len(steps) {
				steps[i] = append(steps[i], d)
			}
		}
	}
	s.Running, s.Full = summarize(running), summarize(full)
	s.Steps = make([]summary, len(steps))
	for i := range steps {
		s.Steps[i] = summarize(steps[i])
	}
}

// memResult is one memory measurement: one runtime with n running pods. Sizes in KiB.
type memResult struct {
	Runtime       string  `json:"runtime"`
	Pods          int     `json:"pods"`
	DaemonPss     uint64  `json:"daemon_pss_kib"`
	DaemonRss     uint64  `json:"daemon_rss_kib"`
	Helpers       int     `json:"helpers"` // monitors or shims found
	HelpersPss    uint64  `json:"helpers_pss_kib"`
	HelpersRss    uint64  `json:"helpers_rss_kib"`
	HelperPerPod  float64 `json:"helper_pss_per_pod_kib"`
	Pauses        int     `json:"pause_processes"`
	PausePss      uint64  `json:"pause_pss_kib"`
	TotalPss      uint64  `json:"total_pss_kib"` // daemon + helpers (pause not included)
	StartDuration string  `json:"start_all_pods"`
}

type results struct {
	Started     string            `json:"started"`
	Finished    string            `json:"finished"`
	Env         map[string]string `json:"environment"`
	LoadBefore  string            `json:"loadavg_before"`
	LoadAfter   string            `json:"loadavg_after"`
	Iterations  int               `json:"iterations"`
	Interleaved bool              `json:"interleaved"`
	Series      []*series         `json:"latency"`
	Floor       string            `json:"floor"` // key of the floor variant used for ratios
	Memory      []memResult       `json:"memory"`
	Targets     []target          `json:"targets"`
	Notes       []string          `json:"notes,omitempty"`
}

func (r *results) failures() int {
	n := 0
	for _, s := range r.Series {
		n += len(s.Failures)
	}
	return n
}

func (r *results) series(key string) *series {
	for _, s := range r.Series {
		if s.Key == key {
			return s
		}
	}
	return nil
}

func measure(ctx context.Context, o options, w *workspace) (*results, error) {
	res := &results{
		Started:     time.Now().UTC().Format(time.RFC3339),
		Iterations:  o.iterations,
		Interleaved: o.interleave,
		LoadBefore:  loadavg(),
		Env:         environment(o),
	}

	var nk, ctd *criRuntime
	note, err := w.setUpState(o.stateTmpfs)
	if err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, note)
	if o.runtimes["floor"] {
		fmt.Println("setting up the floor (busybox layer, runc spec)")
		f, err := newFloor(ctx, w, filepath.Join(o.bin, "nodekit-cri"), filepath.Join(o.images, "busybox.tar"))
		if err != nil {
			return nil, err
		}
		for _, v := range []int{1, 2} {
			res.Series = append(res.Series, &series{
				Key:       fmt.Sprintf("floor-f%d", v),
				Title:     map[int]string{1: "floor F1: runc run -d + delete --force", 2: "floor F2: runc run -d + kill + wait + delete"}[v],
				StepNames: floorSteps(v),
				run: func(ctx context.Context, label string, _ bool) (sample, error) {
					return f.iteration(ctx, v, label)
				},
			})
		}
	}
	w.noteHostDirs()
	net, err := setupCNI(w)
	if err != nil {
		return nil, err
	}
	if o.runtimes["nodekit"] {
		fmt.Println("starting nodekit-cri")
		var withCNI bool
		if nk, withCNI, err = startNodekit(ctx, w, o.bin, o.images, net); err != nil {
			return nil, err
		}
		// The CNI configuration may load in the background: give it a moment.
		netReady, err := nk.waitReady(ctx, withCNI, 5*time.Second)
		if err != nil && withCNI {
			netReady, err = nk.waitReady(ctx, false, 0)
		}
		if err != nil {
			return nil, err
		}
		res.Env["nodekit"] = nk.version
		if netReady {
			res.Notes = append(res.Notes, "both runtimes run the same CNI network: loopback + nkbench-noop (a private netns with lo up, nothing else)")
		} else {
			res.Notes = append(res.Notes, "this nodekit-cri has no CNI (NetworkReady=false): its pods get a private netns with lo up; containerd's get the same through loopback + nkbench-noop")
		}
		res.Series = append(res.Series, &series{Key: "nodekit", Title: "nodekit-cri", StepNames: criSteps, run: nk.iteration})
	}
	if o.runtimes["containerd"] {
		fmt.Println("starting containerd")
		if ctd, err = startContainerd(ctx, w, o.images, net); err != nil {
			return nil, err
		}
		res.Env["containerd CRI"] = ctd.version
		res.Series = append(res.Series, &series{Key: "containerd", Title: "containerd 1.6 (CRI plugin)", StepNames: criSteps, run: ctd.iteration})
	}

	// One warm-up per runtime, not counted; it also checks the container runs.
	for _, s := range res.Series {
		if _, err := s.run(ctx, "warmup", true); err != nil {
			if !o.keepGoing || ctx.Err() != nil {
				return res, fmt.Errorf("warm-up: %w", err)
			}
			s.Failures = append(s.Failures, "warm-up: "+err.Error())
		}
	}
	fmt.Printf("measuring %d iterations per runtime (%s)\n", o.iterations, map[bool]string{true: "interleaved", false: "one runtime after the other"}[o.interleave])
	one := func(s *series, i int) error {
		x, err := s.run(ctx, fmt.Sprintf("%02d", i), false)
		if err != nil {
			if !o.keepGoing || ctx.Err() != nil {
				return fmt.Errorf("iteration %d: %w", i, err)
			}
			s.Failures = append(s.Failures, fmt.Sprintf("iteration %d: %v", i, err))
			return nil
		}
		s.samples = append(s.samples, x)
		return nil
	}
	if o.interleave {
		for i := 0; i < o.iterations; i++ {
			for j := range res.Series {
				if err := one(res.Series[(i+j)%len(res.Series)], i); err != nil {
					return finish(res), err
				}
			}
		}
	} else {
		for _, s := range res.Series {
			for i := 0; i < o.iterations; i++ {
				if err := one(s, i); err != nil {
					return finish(res), err
				}
			}
		}
	}
	finish(res)

	for _, n := range o.pods {
		for _, r := range []*criRuntime{nk, ctd} {
			if r == nil {
				continue
			}
			fmt.Printf("memory: %s with %d pods\n", r.name, n)
			m, err := measureMemory(ctx, r, n, o.settle)
			if err != nil {
				if !o.keepGoing || ctx.Err() != nil {
					return finish(res), err
				}
				res.Notes = append(res.Notes, fmt.Sprintf("memory %s %d pods failed: %v", r.name, n, err))
				continue
			}
			res.Memory = append(res.Memory, m)
		}
	}
	return finish(res), nil
}

// finish summarizes the samples, picks the floor and evaluates the targets.
func finish(res *results) *results {
	for _, s := range res.Series {
		s.summarize()
	}
	f1, f2 := res.series("floor-f1"), res.series("floor-f2")
	switch {
	case f1 != nil && f2 != nil && f1.Full.N > 0 && f2.Full.N > 0:
		res.Floor = "floor-f1"
		if f2.Full.P50 < f1.Full.P50 {
			res.Floor = "floor-f2"
		}
	case f1 != nil && f1.Full.N > 0:
		res.Floor = "floor-f1"
	case f2 != nil && f2.Full.N > 0:
		res.Floor = "floor-f2"
	}
	res.Targets = evaluate(res)
	return res
}

// measureMemory starts n one-container pods, waits settle, sums the Pss of the
// daemon and its helpers, then removes the pods.
func measureMemory(ctx context.Context, r *criRuntime, n int, settle time.Duration) (memResult, error) {
	m := memResult{Runtime: r.name, Pods: n}
	var pods []pod
	defer func() {
		for _, p := range pods {
			_ = r.removePod(context.WithoutCancel(ctx), p)
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		var steps []time.Duration
		p, err := r.startPod(ctx, fmt.Sprintf("mem%d-%02d", n, i), &steps)
		if err != nil {
			return m, err
		}
		pods = append(pods, p)
	}
	m.StartDuration = time.Since(start).Round(time.Millisecond).String()
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return m, ctx.Err()
	}
	for _, p := range pods {
		if err := r.checkRunning(ctx, p); err != nil {
			return m, err
		}
	}
	procs, err := procfs.List()
	if err != nil {
		return m, err
	}
	dm, err := procfs.ReadMemory(r.daemon.PID())
	if err != nil {
		return m, fmt.Errorf("%s daemon memory: %w", r.name, err)
	}
	m.DaemonPss, m.DaemonRss = dm.Pss, dm.Rss
	helpers := r.helpers(procs)
	for _, h := range helpers {
		hm, err := procfs.ReadMemory(h.PID)
		if err != nil {
			return m, fmt.Errorf("%s helper %d memory: %w", r.name, h.PID, err)
		}
		m.Helpers++
		m.HelpersPss += hm.Pss
		m.HelpersRss += hm.Rss
	}
	if m.Helpers != n {
		return m, fmt.Errorf("%s: %d pods running but %d helper processes found", r.name, n, m.Helpers)
	}
	m.HelperPerPod = float64(m.HelpersPss) / float64(n)
	if r.pause != nil {
		for _, p := range r.pause(procs, helpers) {
			pm, err := procfs.ReadMemory(p.PID)
			if err != nil {
				return m, fmt.Errorf("%s pause %d memory: %w", r.name, p.PID, err)
			}
			m.Pauses++
			m.PausePss += pm.Pss
		}
	}
	m.TotalPss = m.DaemonPss + m.HelpersPss
	return m, nil
}

func environment(o options) map[string]string {
	env := map[string]string{}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		env["kernel"] = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/etc/debian_version"); err == nil {
		env["debian"] = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n := 0
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				k = strings.TrimSpace(k)
				if k == "processor" {
					n++
				}
				if k == "model name" && env["cpu"] == "" {
					env["cpu"] = strings.TrimSpace(v)
				}
			}
		}
		env["cpus"] = strconv.Itoa(n)
	}
	env["runc"] = versionOf(filepath.Join(o.bin, "runc")) + " (" + filepath.Join(o.bin, "runc") + ", used by all)"
	if st, err := os.Stat(filepath.Join(o.bin, "nodekit-cri")); err == nil {
		env["nodekit binaries"] = fmt.Sprintf("%s, built %s", o.bin, st.ModTime().UTC().Format(time.RFC3339))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		rev := strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			rev += " (working tree modified)"
		}
		env["repository"] = "git HEAD " + rev + " (of the current directory; the binaries are whatever -bin holds)"
	}
	if o.runtimes["containerd"] {
		env["containerd"] = versionOf("/usr/bin/containerd")
	}
	return env
}

// fsType names the filesystem dir is on, from /proc/self/mountinfo.
func fsType(dir string) string {
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return "?"
	}
	best, fstype := "", "?"
	for _, m := range mounts {
		p := strings.TrimSuffix(m.Mountpoint, "/") + "/"
		if strings.HasPrefix(dir+"/", p) && len(p) >= len(best) {
			best, fstype = p, m.FSType
		}
	}
	return fstype
}

// loadavg is the load averages, "" when they cannot be read.
func loadavg() string {
	s, _ := procfs.LoadAvg()
	return s
}
