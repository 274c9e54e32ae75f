package main

// Part exitcost: what one container exit costs nodekit-kubelet — CRI calls by
// operation type and CPU time of the process (agent + embedded shim) — for an
// old build (-old-bin) and the new one (-bin), in the same run, with
// restartPolicy Never (the exit ends the pod: status, then the pod is stopped)
// and Always (the exit is followed by a restart).
//
// For each policy, each build in turn (old then new; -exitcost-rounds 2 adds a
// second round in the opposite order) runs as a subprocess, like part (b), with
// n static pods of one `sleep` container each. Once they all run and a settle
// time has passed:
//
//  1. baseline: a window without kills: CRI calls from /metrics
//     (kubelet_runtime_operations_total{operation_type}), CPU from
//     /proc/PID/stat (utime + stime; the children it waited for apart);
//  2. kills: SIGKILL each container's init process in turn (pidfd), wait until
//     the agent has finished with the exit — the line it logs anyway at the end
//     ("pod stopped" for Never, "started container … restartCount=1" for
//     Always; reading its log file costs the kubelet nothing, where polling its
//     API every few ms would add requests to the CPU measured) — then pause;
//  3. per exit: (kills − baseline rate × the kill window's length) / exits,
//     for every counter and the CPU; after the window, /pods must show every
//     container terminated (Never) or restarted once (Always).
//
// The pods' periodic resync (syncFrequency, 1 min by default) would fall into
// one window or the other at random, so the kubelets run with
// -exitcost-sync-frequency (10 min): the windows hold the exits and the agent's
// other periodic work (housekeeping every 2 s, the eviction pass every 10 s),
// which the baseline takes out.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	v1 "k8s.io/api/core/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/agent/server"
	"github.com/nodekit-dev/nodekit/bench/internal/mdtable"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/bench/internal/stats"
)

type exitCostOptions struct {
	oldBin        string             // directory with the old nodekit-kubelet
	pods          int                // pods per kubelet run, one exit each
	policies      []v1.RestartPolicy // Never, Always
	gap           time.Duration      // pause after the agent handled an exit
	baseline      time.Duration      // the window without kills
	settle        time.Duration      // after all pods run, before the baseline
	rounds        int                // old, new; then new, old; ...
	syncFrequency time.Duration      // the kubelets' syncFrequency
	timeout       time.Duration      // per exit
	oldExits      string             // the old bench/agent's JSON with its part (a)
}

// buildLabel names a nodekit-kubelet binary.
type buildLabel struct {
	Name   string `json:"name"` // old, new
	Binary string `json:"binary"`
}

// exitCostResult is part exitcost's runs and, from -old-exits, the old
// program's exit → status latency.
type exitCostResult struct {
	Builds   []buildLabel    `json:"builds"`
	Runs     []*exitCostRun  `json:"runs"`
	OldExits []oldExitResult `json:"old_exits,omitempty"`
	// OldExitsFile: where OldExits came from.
	OldExitsFile string `json:"old_exits_file,omitempty"`
}

// exitCostRun is one kubelet run: one build, one restart policy.
type exitCostRun struct {
	Build     string        `json:"build"`
	Policy    string        `json:"restart_policy"`
	Round     int           `json:"round"`
	Pods      int           `json:"pods"`
	StartPods string        `json:"start_all_pods"`
	Baseline  costWindow    `json:"baseline"`
	Kills     costWindow    `json:"kills"`
	Exits     int           `json:"exits"`
	PerExit   exitCost      `json:"per_exit"`
	Handled   stats.Summary `json:"kill_to_handled_log_line"`
	// Load: the 1-minute load average at the baseline's start and at the
	// kills' end (others' work slows the agent's).
	Load    [2]float64 `json:"load1_start_end"`
	Stop    string     `json:"stop,omitempty"`
	handled []time.Duration
}

// costWindow is what the kubelet did over one window: counter deltas from its
// /metrics, by label value, and its CPU time in clock ticks.
type costWindow struct {
	Seconds float64 `json:"seconds"`
	// CRI: kubelet_runtime_operations_total by operation_type.
	CRI map[string]float64 `json:"cri_calls"`
	// Steps: kubelet_pod_worker_duration_seconds_count by operation_type
	// (sync, terminating, terminated).
	Steps map[string]float64 `json:"pod_worker_steps"`
	// Reads: nodekit_pod_worker_status_reads_total by source (cache,
	// inspect); empty for builds without it.
	Reads map[string]float64 `json:"status_reads,omitempty"`
	// CPU: utime + stime of the process (all threads, the exited ones too);
	// Children: of the processes it waited for (runc, CNI plugins, the
	// monitors of exited containers).
	CPU      float64 `json:"cpu_ticks"`
	Children float64 `json:"children_cpu_ticks"`
}

// Metric names part exitcost reads.
const (
	mRuntimeOps  = "kubelet_runtime_operations_total"
	mWorkerSteps = "kubelet_pod_worker_duration_seconds_count"
	mStatusReads = "nodekit_pod_worker_status_reads_total"
)

// newCostWindow is the window between two scrapes and two stat readings, d
// long.
func newCostWindow(m0, m1 metrics, st0, st1 procfs.Stat, d time.Duration) costWindow {
	return costWindow{
		Seconds:  d.Seconds(),
		CRI:      deltaByLabel(m0, m1, mRuntimeOps, "operation_type"),
		Steps:    deltaByLabel(m0, m1, mWorkerSteps, "operation_type"),
		Reads:    deltaByLabel(m0, m1, mStatusReads, "source"),
		CPU:      float64(st1.UTime+st1.STime) - float64(st0.UTime+st0.STime),
		Children: float64(st1.CUTime+st1.CSTime) - float64(st0.CUTime+st0.CSTime),
	}
}

// deltaByLabel is m1 − m0 for every series name{label="v"} (one label), by v;
// series missing from m0 count from 0.
func deltaByLabel(m0, m1 metrics, name, label string) map[string]float64 {
	out := map[string]float64{}
	prefix := name + "{" + label + `="`
	for k, v := range m1 {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || !strings.HasSuffix(rest, `"}`) {
			continue
		}
		val := strings.TrimSuffix(rest, `"}`)
		if strings.Contains(val, `"`) {
			continue // another label follows
		}
		out[val] = v - m0[k]
	}
	return out
}

// excess is what w did beyond base's rate over w's length.
func (w costWindow) excess(base costWindow) costWindow {
	r := 0.0
	if base.Seconds > 0 {
		r = w.Seconds / base.Seconds
	}
	sub := func(a, b map[string]float64) map[string]float64 {
		out := map[string]float64{}
		for k, v := range a {
			out[k] = v - r*b[k]
		}
		for k, v := range b {
			if _, ok := a[k]; !ok {
				out[k] = -r * v
			}
		}
		return out
	}
	return costWindow{Seconds: w.Seconds, CRI: sub(w.CRI, base.CRI), Steps: sub(w.Steps, base.Steps), Reads: sub(w.Reads, base.Reads),
		CPU: w.CPU - r*base.CPU, Children: w.Children - r*base.Children}
}

// plus adds two windows (runs pooled).
func (w costWindow) plus(o costWindow) costWindow {
	add := func(a, b map[string]float64) map[string]float64 {
		out := map[string]float64{}
		for k, v := range a {
			out[k] += v
		}
		for k, v := range b {
			out[k] += v
		}
		return out
	}
	return costWindow{Seconds: w.Seconds + o.Seconds, CRI: add(w.CRI, o.CRI), Steps: add(w.Steps, o.Steps), Reads: add(w.Reads, o.Reads),
		CPU: w.CPU + o.CPU, Children: w.Children + o.Children}
}

// exitCost is the cost of one exit.
type exitCost struct {
	CRI      map[string]float64 `json:"cri_calls"`
	CRITotal float64            `json:"cri_calls_total"`
	Steps    map[string]float64 `json:"pod_worker_steps"`
	Reads    map[string]float64 `json:"status_reads,omitempty"`
	CPUMs    float64            `json:"cpu_ms"`
	ChildMs  float64            `json:"children_cpu_ms"`
}

// per divides an excess window by its exits.
func (w costWindow) per(exits int) exitCost {
	if exits == 0 {
		return exitCost{}
	}
	n := float64(exits)
	div := func(a map[string]float64) map[string]float64 {
		out := map[string]float64{}
		for k, v := range a {
			out[k] = v / n
		}
		return out
	}
	c := exitCost{CRI: div(w.CRI), Steps: div(w.Steps), Reads: div(w.Reads),
		CPUMs: w.CPU * 1000 / procfs.ClockTicks / n, ChildMs: w.Children * 1000 / procfs.ClockTicks / n}
	for _, v := range c.CRI {
		c.CRITotal += v
	}
	if len(w.Reads) == 0 {
		c.Reads = nil
	}
	return c
}

// measureExitCost runs part exitcost.
func measureExitCost(ctx context.Context, w *workspace, o options) (*exitCostResult, error) {
	if err := w.checkKubeletState(); err != nil {
		return nil, err
	}
	opt := o.exitCost
	res := &exitCostResult{Builds: []buildLabel{
		{Name: "old", Binary: filepath.Join(opt.oldBin, "nodekit-kubelet")},
		{Name: "new", Binary: filepath.Join(o.bin, "nodekit-kubelet")},
	}}
	for round := range opt.rounds {
		for _, policy := range opt.policies {
			builds := res.Builds
			if round%2 == 1 {
				builds = []buildLabel{builds[1], builds[0]}
			}
			for _, b := range builds {
				r, err := measureExitCostWith(ctx, w, o, b, policy, round+1)
				if r != nil {
					res.Runs = append(res.Runs, r)
				}
				if err != nil {
					return res, fmt.Errorf("exitcost, %s build, restartPolicy %s: %w", b.Name, policy, err)
				}
			}
		}
	}
	return res, nil
}

// handledLine is the line the agent logs when it has finished with an exit of
// pod's container: "pod stopped" once a Never pod has been stopped, "started
// container" with the restart count for an Always pod.
func handledLine(policy v1.RestartPolicy, pod string, restarts int) func(string) bool {
	if policy == v1.RestartPolicyNever {
		return func(l string) bool {
			a := parseLogLine(l)
			return a["msg"] == "pod stopped" && a["pod"] == pod
		}
	}
	rc := strconv.Itoa(restarts)
	return func(l string) bool {
		a := parseLogLine(l)
		return a["msg"] == "started container" && a["pod"] == pod && a["restartCount"] == rc
	}
}

// parseLogLine splits a log/slog text line (key=value, values with spaces or
// quotes quoted as Go strings) into its attributes; what it cannot read ends
// the line.
func parseLogLine(l string) map[string]string {
	out := map[string]string{}
	for {
		l = strings.TrimLeft(l, " ")
		k, rest, ok := strings.Cut(l, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \"") {
			return out
		}
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return out
			}
			v, _ := strconv.Unquote(q)
			out[k] = v
			l = rest[len(q):]
			continue
		}
		v, next, _ := strings.Cut(rest, " ")
		out[k] = v
		l = next
	}
}

// logFollower reads the lines appended to a log file.
type logFollower struct {
	f       *os.File
	off     int64
	partial string
}

// followLog opens path and starts at its end.
func followLog(path string) (*logFollower, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &logFollower{f: f, off: off}, nil
}

func (l *logFollower) close() { l.f.Close() }

// waitFor polls the file every 2 ms until a new complete line matches, and
// returns when it saw it.
func (l *logFollower) waitFor(ctx context.Context, match func(string) bool, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 64<<10)
	for {
		for {
			n, err := l.f.ReadAt(buf, l.off)
			l.off += int64(n)
			if n > 0 {
				data := l.partial + string(buf[:n])
				lines := strings.Split(data, "\n")
				l.partial = lines[len(lines)-1]
				for _, line := range lines[:len(lines)-1] {
					if match(line) {
						return time.Now(), nil
					}
				}
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return time.Time{}, err
			}
			if n < len(buf) {
				break
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("not seen within %s", timeout)
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}

// exitTarget is one pod's container to kill.
type exitTarget struct {
	pod      string // namespace/name, as the agent logs it
	name     string // pod name
	id       string // CRI container id
	restarts int32
	pidfd    int
}

func measureExitCostWith(ctx context.Context, w *workspace, o options, b buildLabel, policy v1.RestartPolicy, round int) (res *exitCostRun, err error) {
	opt := o.exitCost
	// Short paths: the runtime socket lives in the root dir.
	short := fmt.Sprintf("c%s%s%d", b.Name[:1], strings.ToLower(string(policy[:1])), round)
	prefix := "cost"
	manifests := w.path(short + "-manifests")
	if err := writeManifests(manifests, prefix, 0, opt.pods, policy); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("exitcost, %s build, restartPolicy %s", b.Name, policy)
	if opt.rounds > 1 {
		name += fmt.Sprintf(", round %d", round)
	}
	fmt.Printf("%s: starting %s with %d pods\n", name, b.Binary, opt.pods)
	started := time.Now()
	k, err := startKubelet(ctx, w, kubeletOptions{
		name:      name,
		binary:    b.Binary,
		bin:       o.bin,
		image:     filepath.Join(o.images, "busybox.tar"),
		root:      w.path(short),
		manifests: manifests,
		cgroup:    w.cgroup + "/" + short,
		config:    "syncFrequency: " + opt.syncFrequency.String() + "\n",
	})
	if err != nil {
		return nil, err
	}
	var targets []*exitTarget
	defer func() {
		for _, t := range targets {
			if t.pidfd > 0 {
				unix.Close(t.pidfd)
			}
		}
		took, serr := k.stop()
		if res != nil {
			res.Stop = took
		}
		if serr != nil && err == nil {
			err = serr
		}
	}()
	if err := waitKubeletPods(ctx, k.d, k.sock, prefix, opt.pods, 5*time.Minute); err != nil {
		return nil, err
	}
	res = &exitCostRun{Build: b.Name, Policy: string(policy), Round: round, Pods: opt.pods, StartPods: time.Since(started).Round(time.Millisecond).String()}
	fmt.Printf("%s: %d pods running after %s; settling %s\n", name, opt.pods, res.StartPods, opt.settle)
	if err := sleepCtx(ctx, opt.settle); err != nil {
		return res, err
	}
	// Everything the kills need, before the windows: the containers (from the
	// agent's API), their init pids (verbose ContainerStatus on the benchmark's
	// own connection to the runtime), pidfds.
	if targets, err = exitTargets(ctx, k, prefix, opt.pods); err != nil {
		return res, err
	}
	logs, err := followLog(k.log)
	if err != nil {
		return res, err
	}
	defer logs.close()

	pid := k.d.PID()
	m0, err := scrapeSocket(ctx, k.sock)
	if err != nil {
		return res, err
	}
	res.Load[0] = load1()
	fmt.Printf("%s: baseline, %s without kills\n", name, opt.baseline)
	st0, t0, err := statNow(pid)
	if err != nil {
		return res, err
	}
	if err := sleepCtx(ctx, opt.baseline); err != nil {
		return res, err
	}
	st1, t1, err := statNow(pid)
	if err != nil {
		return res, err
	}
	m1, err := scrapeSocket(ctx, k.sock)
	if err != nil {
		return res, err
	}
	fmt.Printf("%s: killing %d containers one at a time, %s apart\n", name, len(targets), opt.gap)
	st2, t2, err := statNow(pid)
	if err != nil {
		return res, err
	}
	for _, t := range targets {
		match := handledLine(policy, t.pod, int(t.restarts)+1)
		k0 := time.Now()
		if err := unix.PidfdSendSignal(t.pidfd, unix.SIGKILL, nil, 0); err != nil {
			return res, fmt.Errorf("kill container %.12s of %s: %w", t.id, t.pod, err)
		}
		at, err := logs.waitFor(ctx, match, opt.timeout)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, fmt.Errorf("%s: the agent's log line for the exit of container %.12s: %w\n%s", t.pod, t.id, err, k.d.LogTail(20))
		}
		res.handled = append(res.handled, at.Sub(k0))
		if err := sleepCtx(ctx, opt.gap); err != nil {
			return res, err
		}
	}
	st3, t3, err := statNow(pid)
	if err != nil {
		return res, err
	}
	m2, err := scrapeSocket(ctx, k.sock)
	if err != nil {
		return res, err
	}
	res.Load[1] = load1()
	res.Baseline = newCostWindow(m0, m1, st0, st1, t1.Sub(t0))
	res.Kills = newCostWindow(m1, m2, st2, st3, t3.Sub(t2))
	res.Exits = len(res.handled)
	res.PerExit = res.Kills.excess(res.Baseline).per(res.Exits)
	res.Handled = stats.Summarize(res.handled)
	if err := checkExited(ctx, k, targets, policy); err != nil {
		return res, err
	}
	fmt.Printf("%s: per exit %.1f CRI calls, %.2f ms CPU (kill → handled p50 %s ms; baseline %.1f CRI calls/min, %.4f cores)\n",
		name, res.PerExit.CRITotal, res.PerExit.CPUMs, ms(res.Handled.P50),
		sumValues(res.Baseline.CRI)*60/res.Baseline.Seconds, res.Baseline.CPU/procfs.ClockTicks/res.Baseline.Seconds)
	return res, nil
}

// load1 is the 1-minute load average (0 if unreadable).
func load1() float64 {
	s, err := procfs.LoadAvg()
	if err != nil {
		return 0
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func statNow(pid int) (procfs.Stat, time.Time, error) {
	st, err := procfs.ReadStat(pid)
	return st, time.Now(), err
}

func sumValues(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// exitTargets finds the running container of each pod prefix-<i> and opens a
// pidfd on its init process.
func exitTargets(ctx context.Context, k *kubelet, prefix string, n int) (out []*exitTarget, err error) {
	defer func() {
		if err != nil {
			for _, t := range out {
				if t.pidfd > 0 {
					unix.Close(t.pidfd)
				}
			}
			out = nil
		}
	}()
	list, err := server.ListPods(ctx, k.sock)
	if err != nil {
		return nil, err
	}
	byName := map[string]*v1.Pod{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	conn, err := grpc.NewClient("unix://"+k.rtSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", k.rtSock, err)
	}
	defer conn.Close()
	c := runtime.NewRuntimeServiceClient(conn)
	for i := range n {
		p := byName[podName(manifestName(prefix, i))]
		if p == nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Running == nil {
			return out, fmt.Errorf("pod %s: not running", podName(manifestName(prefix, i)))
		}
		cs := p.Status.ContainerStatuses[0]
		t := &exitTarget{pod: p.Namespace + "/" + p.Name, name: p.Name, id: criID(cs.ContainerID), restarts: cs.RestartCount}
		pid, err := initPid(ctx, c, t.id)
		if err != nil {
			return out, err
		}
		if t.pidfd, err = unix.PidfdOpen(pid, 0); err != nil {
			return out, fmt.Errorf("pidfd_open %d (container %.12s): %w", pid, t.id, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// checkExited confirms through the agent's API what the log lines said: every
// container terminated (Never) or restarted once and running again (Always).
func checkExited(ctx context.Context, k *kubelet, targets []*exitTarget, policy v1.RestartPolicy) error {
	list, err := server.ListPods(ctx, k.sock)
	if err != nil {
		return err
	}
	byName := map[string]*v1.Pod{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	var bad []string
	for _, t := range targets {
		p := byName[t.name]
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			bad = append(bad, t.name+": no container status")
			continue
		}
		cs := p.Status.ContainerStatuses[0]
		switch {
		case policy == v1.RestartPolicyNever && (cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 137 || p.Status.Phase != v1.PodFailed):
			bad = append(bad, fmt.Sprintf("%s: phase %s, container %+v, want Failed and terminated with 137", t.name, p.Status.Phase, cs.State))
		case policy != v1.RestartPolicyNever && (cs.RestartCount != t.restarts+1 || cs.State.Running == nil):
			bad = append(bad, fmt.Sprintf("%s: restart count %d, running %v; want %d and running", t.name, cs.RestartCount, cs.State.Running != nil, t.restarts+1))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("after the kills, the agent's API shows: %s", strings.Join(bad, "; "))
	}
	return nil
}

// oldExitResult is what the old program's JSON says of part (a) (-old-exits).
type oldExitResult struct {
	PLEG     string    `json:"pleg"`
	Evented  bool      `json:"evented_verified"`
	Latency  summaryMs `json:"kill_to_status_put"`
	CRIEvent summaryMs `json:"kill_to_cri_event"`
	Missed   int       `json:"missed"`
}

// summaryMs is stats.Summary as its JSON has it.
type summaryMs struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// readOldExits reads part (a)'s results from another bench/agent's -json file.
func readOldExits(path string) ([]oldExitResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-old-exits: %w", err)
	}
	var r struct {
		Exits []oldExitResult `json:"exits"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("-old-exits %s: %w", path, err)
	}
	if len(r.Exits) == 0 {
		return nil, fmt.Errorf("-old-exits %s: no exits results (run the old program with -parts exits)", path)
	}
	return r.Exits, nil
}

// pooled is the per-exit cost of build over every round with policy, and the
// kill → handled latencies.
func (r *exitCostResult) pooled(build, policy string) (exitCost, costWindow, stats.Summary, int) {
	var ex, base costWindow
	var lat []time.Duration
	exits := 0
	for _, run := range r.Runs {
		if run.Build != build || run.Policy != policy || run.Exits == 0 {
			continue
		}
		ex = ex.plus(run.Kills.excess(run.Baseline))
		base = base.plus(run.Baseline)
		exits += run.Exits
		lat = append(lat, run.handled...)
	}
	return ex.per(exits), base, stats.Summarize(lat), exits
}

// loads lists the load averages of build's runs with policy.
func (r *exitCostResult) loads(build, policy string) string {
	var out []string
	for _, run := range r.Runs {
		if run.Build == build && run.Policy == policy {
			out = append(out, fmt.Sprintf("%.1f → %.1f", run.Load[0], run.Load[1]))
		}
	}
	return strings.Join(out, "; ")
}

// reportExitCost prints part exitcost: per exit, old against new, per policy;
// then the old program's exit → status latency against this run's.
func reportExitCost(w io.Writer, r *exitCostResult, exits []*exitResult) {
	if r == nil {
		return
	}
	var policies []string
	for _, run := range r.Runs {
		if !slices.Contains(policies, run.Policy) {
			policies = append(policies, run.Policy)
		}
	}
	if len(policies) > 0 {
		fmt.Fprintf(w, "\n### Cost of one container exit, old vs new nodekit-kubelet (the baseline's rate subtracted)\n\n")
		for _, b := range r.Builds {
			fmt.Fprintf(w, "- %s: %s\n", b.Name, b.Binary)
		}
		fmt.Fprintf(w, "- CPU in clock ticks of %d ms: ±%.2f ms per exit at %d exits\n", 1000/procfs.ClockTicks,
			2*1000/procfs.ClockTicks/float64(max(1, r.Runs[0].Pods)), r.Runs[0].Pods)
	}
	for _, policy := range policies {
		oc, ob, ol, on := r.pooled("old", policy)
		nc, nb, nl, nn := r.pooled("new", policy)
		fmt.Fprintf(w, "\n#### restartPolicy %s\n\n", policy)
		rows := [][]string{{"per exit", "old", "new", "new/old"}}
		row := func(what string, o, n float64) {
			rows = append(rows, []string{what, fmt.Sprintf("%.2f", o), fmt.Sprintf("%.2f", n), ratio(n, o)})
		}
		row("**CRI calls**", oc.CRITotal, nc.CRITotal)
		for _, op := range sortedKeys(oc.CRI, nc.CRI) {
			if math.Abs(oc.CRI[op]) >= 0.05 || math.Abs(nc.CRI[op]) >= 0.05 {
				row("- "+op, oc.CRI[op], nc.CRI[op])
			}
		}
		row("**CPU ms**, nodekit-kubelet (user + sys)", oc.CPUMs, nc.CPUMs)
		row("CPU ms of reaped children (the dead container's monitor, runc, CNI plugins)", oc.ChildMs, nc.ChildMs)
		for _, s := range sortedKeys(oc.Steps, nc.Steps) {
			row("pod worker steps: "+s, oc.Steps[s], nc.Steps[s])
		}
		for _, s := range sortedKeys(oc.Reads, nc.Reads) {
			o := "-"
			if oc.Reads != nil {
				o = fmt.Sprintf("%.2f", oc.Reads[s])
			}
			rows = append(rows, []string{"status reads: " + s, o, fmt.Sprintf("%.2f", nc.Reads[s]), "-"})
		}
		rows = append(rows, []string{"kill → the agent's log line p50 / p99 (ms)", ms(ol.P50) + " / " + ms(ol.P99), ms(nl.P50) + " / " + ms(nl.P99), ""})
		rows = append(rows, []string{"exits", fmt.Sprint(on), fmt.Sprint(nn), ""})
		rows = append(rows, []string{"load average (1 min) at the baseline's start → the kills' end", r.loads("old", policy), r.loads("new", policy), ""})
		rows = append(rows, []string{"baseline: CRI calls/min, cores", fmt.Sprintf("%.1f, %.4f", ratePerMin(sumValues(ob.CRI), ob.Seconds), cores(ob)),
			fmt.Sprintf("%.1f, %.4f", ratePerMin(sumValues(nb.CRI), nb.Seconds), cores(nb)), ""})
		mdtable.Write(w, rows)
	}
	if len(r.OldExits) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### Exit → status, old program (%s) vs this one, same run (ms)\n\n", r.OldExitsFile)
	rows := [][]string{{"PLEG", "build", "exits", "p50", "p90", "p99", "max", "kill → CRI event p99"}}
	for _, old := range r.OldExits {
		rows = append(rows, []string{old.PLEG, "old", fmt.Sprint(old.Latency.N), f2(old.Latency.P50), f2(old.Latency.P90), f2(old.Latency.P99), f2(old.Latency.Max), f2(old.CRIEvent.P99)})
		for _, e := range exits {
			if e.PLEG == old.PLEG {
				rows = append(rows, []string{"", "new", fmt.Sprint(e.Latency.N), ms(e.Latency.P50), ms(e.Latency.P90), ms(e.Latency.P99), ms(e.Latency.Max), ms(e.CRIEvent.P99)})
				rows = append(rows, []string{"", "new/old", "", ratio(stats.Millis(e.Latency.P50), old.Latency.P50), ratio(stats.Millis(e.Latency.P90), old.Latency.P90),
					ratio(stats.Millis(e.Latency.P99), old.Latency.P99), ratio(stats.Millis(e.Latency.Max), old.Latency.Max), ""})
			}
		}
	}
	mdtable.Write(w, rows)
}

func ratio(n, o float64) string {
	if o == 0 || math.Abs(o) < 1e-9 {
		return "-"
	}
	return fmt.Sprintf("%.2f", n/o)
}

func ratePerMin(v, seconds float64) float64 {
	if seconds == 0 {
		return 0
	}
	return v * 60 / seconds
}

func cores(w costWindow) float64 {
	if w.Seconds == 0 {
		return 0
	}
	return w.CPU / procfs.ClockTicks / w.Seconds
}

// f2 formats milliseconds as ms does.
func f2(v float64) string { return ms(time.Duration(v * float64(time.Millisecond))) }

// sortedKeys are the keys of a and b, largest value (in either) first.
func sortedKeys(a, b map[string]float64) []string {
	seen := map[string]float64{}
	for k, v := range a {
		seen[k] = max(seen[k], math.Abs(v))
	}
	for k, v := range b {
		seen[k] = max(seen[k], math.Abs(v))
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if seen[keys[i]] != seen[keys[j]] {
			return seen[keys[i]] > seen[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
