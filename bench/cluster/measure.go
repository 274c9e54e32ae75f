package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/bench/internal/stats"
	"github.com/nodekit-dev/nodekit/internal/controlplane"
)

// agentResult is what one agent measured.
type agentResult struct {
	Agent   string `json:"agent"`
	Label   string `json:"label"`
	Node    string `json:"node"`
	Version string `json:"version"`
	// NodeReady: from the agent's start to its Node Ready in the API.
	NodeReady string `json:"node_ready_after"`
	// From the create call's return to the first watch event showing the
	// pod Running, and Ready.
	CreateRunning stats.Summary `json:"create_to_running"`
	CreateReady   stats.Summary `json:"create_to_ready"`
	// From the write that ends the container to the first watch event
	// showing its container terminated, and the pod Succeeded.
	ExitTerminated stats.Summary `json:"exit_to_container_terminated"`
	ExitSucceeded  stats.Summary `json:"exit_to_succeeded"`
	Idle           *idleResult   `json:"idle,omitempty"`
	// Load: /proc/loadavg at the start and end of each measurement (the
	// machine is shared).
	Load []string `json:"loadavg"`
}

// noteLoad records the load average at a point of the run.
func (r *agentResult) noteLoad(what string) {
	if la, err := procfs.LoadAvg(); err == nil {
		r.Load = append(r.Load, what+": "+la)
	}
}

// idleResult is the agent with many idle pods over a window.
type idleResult struct {
	Pods     int           `json:"pods"`
	Running  string        `json:"all_running_after"`
	Seconds  float64       `json:"seconds"`
	Requests requestCounts `json:"api_requests"`
	// Groups: the agent's process, the runtime's daemon (none for
	// nodekit-kubelet: the shim is in the agent's process), the per-pod
	// helpers (nodekit-monitor, containerd-shim-runc-v2).
	Groups []procGroup `json:"processes"`
	// The window, for the audit log.
	from, to time.Time
}

// procGroup is the CPU and memory of some processes over the window.
type procGroup struct {
	Role  string `json:"role"` // agent, runtime, helpers
	Name  string `json:"name"`
	Count int    `json:"count"`
	// Cores: CPU seconds per second of the processes (all threads); of the
	// children they waited for during the window (runc, CNI plugins, du...)
	// separately.
	Cores         float64 `json:"cores"`
	ChildrenCores float64 `json:"waited_children_cores"`
	// Memory at the end of the window, summed over the processes, KiB.
	Mem procfs.Memory `json:"memory_kib"`
}

// closeOnce runs f once.
func closeOnce(f func(say func(string, ...any))) func(say func(string, ...any)) {
	var once sync.Once
	return func(say func(string, ...any)) { once.Do(func() { f(say) }) }
}

// runAgent starts a control plane with an audit log, the agent as its only
// node, measures, and stops both.
func runAgent(ctx context.Context, w *workspace, o options, net *network, kind string) (*agentResult, error) {
	say := func(format string, a ...any) { fmt.Printf("%s: "+format+"\n", append([]any{kind}, a...)...) }
	auditLog := w.path("audit-" + kind + ".log")
	say("starting a control plane (audit log %s)", auditLog)
	if err := os.MkdirAll(w.path("cp-"+kind), 0o700); err != nil {
		return nil, err
	}
	cp, err := controlplane.New(ctx, controlplane.Options{Dir: o.controlPlane, WorkDir: w.path("cp-" + kind), AuditLog: auditLog})
	if err != nil {
		return nil, err
	}
	closeCP := closeOnce(func(say func(string, ...any)) {
		// Kept for -logs: the components log into memory.
		if err := os.WriteFile(w.path("controlplane-"+kind+".log"), []byte(cp.Logs()), 0o644); err != nil {
			say("control plane of %s: keeping its logs: %v", kind, err)
		}
		if err := cp.Close(); err != nil {
			say("control plane of %s: %v", kind, err)
		} else {
			say("stopped the control plane of %s", kind)
		}
	})
	w.onCleanup(closeCP)
	rc, err := clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 200, 400 // the benchmark's own requests are never throttled
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}

	name := kind
	res := &agentResult{Agent: kind, Label: agentLabel(kind), Node: name}
	say("starting %s as node %s", agentLabel(kind), name)
	started := time.Now()
	var n *node
	if kind == agentNodekit {
		n, err = startNodekit(ctx, w, o, cp, net, name)
	} else {
		n, err = startUpstream(ctx, w, o, cp, net, kind, name)
	}
	if n != nil {
		stop := closeOnce(n.stop)
		n.stop = stop
		w.onCleanup(stop)
	}
	if err != nil {
		return nil, err
	}
	res.Version = n.version
	if err := waitNodeReady(ctx, client, n, 3*time.Minute); err != nil {
		return res, err
	}
	res.NodeReady = time.Since(started).Round(time.Millisecond).String()
	say("node Ready after %s", res.NodeReady)

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pw, err := watchPods(wctx, client, name)
	if err != nil {
		return res, err
	}
	if o.pods > 0 {
		res.noteLoad("latency start")
		err := measureLatency(ctx, w, o, client, pw, n, res, say)
		res.noteLoad("latency end")
		if err != nil {
			return res, err
		}
	}
	if o.idlePods > 0 {
		idle, err := measureIdle(ctx, o, client, pw, n, say, res.noteLoad)
		res.Idle = idle
		if err != nil {
			return res, err
		}
	}
	cancel()
	// Stop the agent and the control plane before the next agent runs.
	n.stop(func(format string, a ...any) { say(format, a...) })
	if res.Idle != nil {
		c, err := countRequestsIn(auditLog, "system:node:"+name, res.Idle.from, res.Idle.to)
		if err != nil {
			return res, err
		}
		res.Idle.Requests = c
	}
	closeCP(func(format string, a ...any) { say(format, a...) })
	return res, nil
}

// waitNodeReady polls the Node until it is Ready without taints.
func waitNodeReady(ctx context.Context, c kubernetes.Interface, n *node, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "not registered"
	for {
		if err := n.alive(); err != nil {
			return err
		}
		nd, err := c.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err == nil {
			last = "not Ready"
			for _, cond := range nd.Status.Conditions {
				if cond.Type == v1.NodeReady && cond.Status == v1.ConditionTrue {
					if len(nd.Spec.Taints) == 0 {
						return nil
					}
					last = fmt.Sprintf("Ready, tainted %v", nd.Spec.Taints)
				} else if cond.Type == v1.NodeReady {
					last = "not Ready: " + cond.Message
				}
			}
		} else if !apierrors.IsNotFound(err) {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: %s after %s\n%s", n.name, last, limit, n.agent.LogTail(30))
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// measureLatency runs o.pods trigger pods (plus one warm-up) one after the
// other: create → Running → Ready, then the FIFO written → Succeeded, then the
// pod deleted and gone from the API before the next.
func measureLatency(ctx context.Context, w *workspace, o options, c kubernetes.Interface, pw *podWatch, n *node, res *agentResult, say func(string, ...any)) error {
	var running, ready, terminated, exits []time.Duration
	say("create → Running and exit → Succeeded: %d pods (+1 warm-up), one at a time", o.pods)
	pods := c.CoreV1().Pods(namespace)
	for i := 0; i <= o.pods; i++ {
		name := fmt.Sprintf("lat-%03d", i)
		dir := w.path("trig", n.kind, name)
		if err := makeTrigger(dir); err != nil {
			return err
		}
		if _, err := pods.Create(ctx, triggerPod(name, n.name, dir), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		t0 := time.Now()
		one := []string{name}
		if _, err := pw.wait(ctx, one, "Running", 2*time.Minute, n.alive, func(t *podTimes) bool { return !t.running.IsZero() }); err != nil {
			return err
		}
		t, err := pw.wait(ctx, one, "Ready", 2*time.Minute, n.alive, func(t *podTimes) bool { return !t.ready.IsZero() })
		if err != nil {
			return err
		}
		tr, err := pull(ctx, dir, time.Minute, n.alive)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		done, err := pw.wait(ctx, one, "Succeeded", 2*time.Minute, n.alive, func(t *podTimes) bool { return !t.succeeded.IsZero() || !t.failed.IsZero() })
		if err != nil {
			return err
		}
		end := done[name]
		if end.succeeded.IsZero() {
			return fmt.Errorf("%s failed: %s", name, end.reason)
		}
		if i > 0 {
			running = append(running, t[name].running.Sub(t0))
			ready = append(ready, t[name].ready.Sub(t0))
			terminated = append(terminated, end.terminated.Sub(tr))
			exits = append(exits, end.succeeded.Sub(tr))
		}
		if err := pods.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
		if _, err := pw.wait(ctx, one, "deleted", 2*time.Minute, n.alive, func(t *podTimes) bool { return !t.deleted.IsZero() }); err != nil {
			return err
		}
		if i > 0 && i%10 == 0 {
			say("  %d/%d pods", i, o.pods)
		}
	}
	res.CreateRunning, res.CreateReady = stats.Summarize(running), stats.Summarize(ready)
	res.ExitTerminated, res.ExitSucceeded = stats.Summarize(terminated), stats.Summarize(exits)
	say("create → Running p50 %s p99 %s ms; create → Ready p50 %s p99 %s ms; exit → container terminated p50 %s p99 %s ms; exit → Succeeded p50 %s p99 %s ms",
		ms(res.CreateRunning.P50), ms(res.CreateRunning.P99), ms(res.CreateReady.P50), ms(res.CreateReady.P99),
		ms(res.ExitTerminated.P50), ms(res.ExitTerminated.P99), ms(res.ExitSucceeded.P50), ms(res.ExitSucceeded.P99))
	return nil
}

// measureIdle creates o.idlePods idle pods at once, waits until all are
// Running, lets the node settle, then samples the agent, its runtime and
// their helpers over o.window; the window's API requests are counted later
// from the audit log. Then it deletes the pods and waits until they are gone.
func measureIdle(ctx context.Context, o options, c kubernetes.Interface, pw *podWatch, n *node, say func(string, ...any), noteLoad func(string)) (*idleResult, error) {
	res := &idleResult{Pods: o.idlePods}
	names := make([]string, o.idlePods)
	pods := c.CoreV1().Pods(namespace)
	say("idle: creating %d pods", o.idlePods)
	t := time.Now()
	for i := range names {
		names[i] = fmt.Sprintf("idle-%03d", i)
		if _, err := pods.Create(ctx, idlePod(names[i], n.name), metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create %s: %w", names[i], err)
		}
	}
	// Deleted on every path from here.
	defer func() {
		say("idle: deleting the %d pods", len(names))
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		for _, name := range names {
			if err := pods.Delete(dctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				say("delete %s: %v", name, err)
			}
		}
		t := time.Now()
		if _, err := pw.wait(dctx, names, "deleted", 5*time.Minute, n.alive, func(t *podTimes) bool { return !t.deleted.IsZero() }); err != nil {
			say("idle: %v", err)
		} else {
			say("idle: all pods gone after %s", time.Since(t).Round(time.Millisecond))
		}
	}()
	if _, err := pw.wait(ctx, names, "Running", 10*time.Minute, n.alive, func(t *podTimes) bool { return !t.running.IsZero() }); err != nil {
		return res, err
	}
	res.Running = time.Since(t).Round(time.Millisecond).String()
	say("idle: %d pods Running after %s; settling %s", o.idlePods, res.Running, o.settle)
	if err := sleepCtx(ctx, o.settle); err != nil {
		return res, err
	}
	noteLoad("window start")
	groups, err := sample(ctx, n, o.window, res)
	noteLoad("window end")
	res.Groups = groups
	if err != nil {
		return res, err
	}
	for _, g := range groups {
		say("idle: %s (%d): %.4f cores (+%.4f waited children), RSS %.1f MiB, Pss %.1f MiB", g.Name, g.Count, g.Cores, g.ChildrenCores,
			float64(g.Mem.Rss)/1024, float64(g.Mem.Pss)/1024)
	}
	return res, nil
}

// sample reads the CPU times of the agent, the runtime and the helpers at the
// start and the end of window, and their memory at the end; it sets res.from
// and res.to.
func sample(ctx context.Context, n *node, window time.Duration, res *idleResult) ([]procGroup, error) {
	helpers, err := n.helpers()
	if err != nil {
		return nil, err
	}
	groups := []procGroup{{Role: "agent", Name: filepath.Base(agentLabel(n.kind)), Count: 1}}
	pids := [][]int{{n.agent.PID()}}
	if n.kind != agentNodekit {
		groups[0].Name = "kubelet"
	}
	if n.runtimePID != 0 {
		groups = append(groups, procGroup{Role: "runtime", Name: n.runtimeName, Count: 1})
		pids = append(pids, []int{n.runtimePID})
	}
	groups = append(groups, procGroup{Role: "helpers", Name: n.helperName, Count: len(helpers)})
	pids = append(pids, helpers)

	read := func() ([][]procfs.Stat, error) {
		out := make([][]procfs.Stat, len(pids))
		for i, ps := range pids {
			for _, p := range ps {
				st, err := procfs.ReadStat(p)
				if err != nil {
					return nil, fmt.Errorf("%s pid %d: %w", groups[i].Name, p, err)
				}
				out[i] = append(out[i], st)
			}
		}
		return out, nil
	}
	s0, err := read()
	if err != nil {
		return groups, err
	}
	res.from = time.Now()
	fmt.Printf("%s: idle: sampling for %s\n", n.kind, window)
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return groups, ctx.Err()
	}
	s1, err := read()
	res.to = time.Now()
	if err != nil {
		return groups, err
	}
	if err := n.alive(); err != nil {
		return groups, err
	}
	el := res.to.Sub(res.from).Seconds()
	res.Seconds = el
	for i := range groups {
		var ticks, child uint64
		for j := range s0[i] {
			ticks += s1[i][j].UTime + s1[i][j].STime - s0[i][j].UTime - s0[i][j].STime
			child += s1[i][j].CUTime + s1[i][j].CSTime - s0[i][j].CUTime - s0[i][j].CSTime
		}
		groups[i].Cores = float64(ticks) / procfs.ClockTicks / el
		groups[i].ChildrenCores = float64(child) / procfs.ClockTicks / el
		for _, p := range pids[i] {
			m, err := procfs.ReadMemory(p)
			if err != nil {
				return groups, fmt.Errorf("%s pid %d: %w", groups[i].Name, p, err)
			}
			groups[i].Mem.Rss += m.Rss
			groups[i].Mem.Pss += m.Pss
			groups[i].Mem.Anon += m.Anon
		}
	}
	return groups, nil
}

// sleepCtx waits d (a settling time, not a condition) or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ms formats d in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f", stats.Millis(d)) }
