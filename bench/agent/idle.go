package main

// Part (b): the real bin/nodekit-kubelet (agent + embedded shim in one process)
// as a subprocess with n idle static pods: CPU and memory of the process and of
// its nodekit-monitor children over a window, the PLEG's relist histogram from
// its /metrics, then relist durations (relisttime.Measure against its runtime
// socket) at n pods and, after more manifests, at a larger count.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"
	criclient "k8s.io/cri-client/pkg"

	"github.com/nodekit-dev/nodekit/agent/server"
	"github.com/nodekit-dev/nodekit/bench/internal/daemon"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/bench/internal/stats"
	"github.com/nodekit-dev/nodekit/internal/relisttime"
)

type idleOptions struct {
	pods        int           // idle pods
	window      time.Duration // sampling window at pods
	settle      time.Duration // after all pods run, before sampling
	scalePods   int           // then grow to this many (0: no)
	scaleWindow time.Duration // sampling window at scalePods (0: none)
	relistRuns  int           // relisttime.Measure calls (each: one cold relist + warm ones)
	relistWarm  int           // warm relists per call
}

// idleResult is one nodekit-kubelet run (one PLEG).
type idleResult struct {
	PLEG      string         `json:"pleg"`
	StartPods string         `json:"start_all_pods"`
	ScalePods string         `json:"start_scale_pods,omitempty"`
	Samples   []idleSample   `json:"samples"`
	Relists   []relistResult `json:"relist"`
	Stop      string         `json:"stop"`
}

// idleSample is the cost of the kubelet with some idle pods over a window.
type idleSample struct {
	Pods    int     `json:"pods"`
	Seconds float64 `json:"seconds"`
	// CPU in cores (CPU seconds per second): the nodekit-kubelet process (all
	// threads: agent and shim), the processes it waited for during the window
	// (runc, CNI plugins), and its nodekit-monitor children.
	KubeletCores  float64 `json:"kubelet_cores"`
	KubeletUser   float64 `json:"kubelet_user_cores"`
	KubeletSys    float64 `json:"kubelet_sys_cores"`
	ChildrenCores float64 `json:"waited_children_cores"`
	MonitorCores  float64 `json:"monitors_cores"`
	Wakeups       float64 `json:"kubelet_context_switches_per_s"`
	Threads       int     `json:"kubelet_threads"`
	// ThreadSyscalls: what the kubelet's threads are blocked in at the end of
	// the window ("futex 7, waitid 100").
	ThreadSyscalls string `json:"kubelet_thread_syscalls"`
	// Memory at the end of the window, KiB.
	Kubelet     procfs.Memory `json:"kubelet_kib"`
	Monitors    int           `json:"monitors"`
	MonitorsMem procfs.Memory `json:"monitors_kib"`
	// From /metrics over the window.
	Relists      float64 `json:"relists"`
	RelistMeanMs float64 `json:"relist_mean_ms"`
	RelistP99Le  float64 `json:"relist_p99_bucket_le_ms"`
	SyncsPerS    float64 `json:"pod_syncs_per_s"`
}

// relistResult is relisttime.Measure against the kubelet's runtime.
type relistResult struct {
	Pods int           `json:"pods"`
	Cold stats.Summary `json:"cold"`
	Warm stats.Summary `json:"warm_mean_per_call"`
}

// measureIdle runs part (b) for each PLEG.
func measureIdle(ctx context.Context, w *workspace, o options) ([]*idleResult, error) {
	if err := w.checkKubeletState(); err != nil {
		return nil, err
	}
	var out []*idleResult
	for _, p := range o.plegs {
		r, err := measureIdleWith(ctx, w, o, p)
		if r != nil {
			out = append(out, r)
		}
		if err != nil {
			return out, fmt.Errorf("idle, %s PLEG: %w", p, err)
		}
	}
	return out, nil
}

func measureIdleWith(ctx context.Context, w *workspace, o options, plegName string) (res *idleResult, err error) {
	opt := o.idle
	prefix := "idle"
	// Short paths: the runtime socket lives in the root dir (108-byte limit).
	manifests := w.path("k" + plegName[:1] + "-manifests")
	if err := writeManifests(manifests, prefix, 0, opt.pods, v1.RestartPolicyAlways); err != nil {
		return nil, err
	}
	name := "idle, " + plegName + " PLEG"
	fmt.Printf("%s: starting nodekit-kubelet with %d pods\n", name, opt.pods)
	started := time.Now()
	k, err := startKubelet(ctx, w, kubeletOptions{
		name:      name,
		binary:    filepath.Join(o.bin, "nodekit-kubelet"),
		bin:       o.bin,
		image:     filepath.Join(o.images, "busybox.tar"),
		root:      w.path("k" + plegName[:1]),
		manifests: manifests,
		cgroup:    w.cgroup + "/k" + plegName[:1],
		generic:   plegName == "generic",
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		took, serr := k.stop()
		if res != nil && took != "" {
			res.Stop = took
		}
		if serr != nil && err == nil {
			err = serr
		}
	}()
	d, sock := k.d, k.sock
	if err := waitKubeletPods(ctx, d, sock, prefix, opt.pods, 5*time.Minute); err != nil {
		return nil, err
	}
	res = &idleResult{PLEG: plegName, StartPods: time.Since(started).Round(time.Millisecond).String()}
	fmt.Printf("idle, %s PLEG: %d pods running after %s; settling %s\n", plegName, opt.pods, res.StartPods, opt.settle)
	if err := sleepCtx(ctx, opt.settle); err != nil {
		return res, err
	}
	s, err := sampleIdle(ctx, d, sock, opt.window, opt.pods)
	if err != nil {
		return res, err
	}
	res.Samples = append(res.Samples, s)
	printSample(plegName, s)
	rtSock := k.rtSock
	if opt.relistRuns > 0 {
		r, err := measureRelist(ctx, rtSock, opt.relistRuns, opt.relistWarm)
		if err != nil {
			return res, err
		}
		res.Relists = append(res.Relists, r)
	}
	if opt.scalePods <= opt.pods {
		return res, nil
	}
	fmt.Printf("idle, %s PLEG: growing to %d pods\n", plegName, opt.scalePods)
	t := time.Now()
	if err := writeManifests(manifests, prefix, opt.pods, opt.scalePods, v1.RestartPolicyAlways); err != nil {
		return res, err
	}
	if err := waitKubeletPods(ctx, d, sock, prefix, opt.scalePods, 5*time.Minute); err != nil {
		return res, err
	}
	res.ScalePods = time.Since(t).Round(time.Millisecond).String()
	if err := sleepCtx(ctx, opt.settle); err != nil {
		return res, err
	}
	if opt.scaleWindow > 0 {
		s, err := sampleIdle(ctx, d, sock, opt.scaleWindow, opt.scalePods)
		if err != nil {
			return res, err
		}
		res.Samples = append(res.Samples, s)
		printSample(plegName, s)
	}
	if opt.relistRuns > 0 {
		r, err := measureRelist(ctx, rtSock, opt.relistRuns, opt.relistWarm)
		if err != nil {
			return res, err
		}
		res.Relists = append(res.Relists, r)
	}
	return res, nil
}

func printSample(plegName string, s idleSample) {
	fmt.Printf("idle, %s PLEG, %d pods: nodekit-kubelet %.4f cores, RSS %s MiB (Pss %s); %d monitors %.4f cores, Pss %s MiB; %.0f relists (mean %.2f ms)\n",
		plegName, s.Pods, s.KubeletCores, mib(float64(s.Kubelet.Rss)), mib(float64(s.Kubelet.Pss)),
		s.Monitors, s.MonitorCores, mib(float64(s.MonitorsMem.Pss)), s.Relists, s.RelistMeanMs)
}

// waitKubeletPods polls the kubelet's local API until the n pods prefix-<i>
// are Running with their containers ready.
func waitKubeletPods(ctx context.Context, d *daemon.Daemon, sock, prefix string, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var have int
	var lastErr error
	for {
		if d.Exited() {
			return fmt.Errorf("nodekit-kubelet exited: %v\n%s", d.Err(), d.LogTail(20))
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		list, err := server.ListPods(cctx, sock)
		cancel()
		if err == nil {
			want := map[string]bool{}
			for i := range n {
				want[podName(manifestName(prefix, i))] = true
			}
			have = 0
			for i := range list.Items {
				if want[list.Items[i].Name] && podRunning(&list.Items[i].Status) {
					have++
				}
			}
			if have == n {
				return nil
			}
		}
		lastErr = err
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d pods running after %s (last error: %v)\n%s", have, n, limit, lastErr, d.LogTail(20))
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// sampleIdle measures the kubelet d (and its monitors) over window.
func sampleIdle(ctx context.Context, d *daemon.Daemon, sock string, window time.Duration, pods int) (idleSample, error) {
	s := idleSample{Pods: pods}
	pid := d.PID()
	m0, err := scrapeSocket(ctx, sock)
	if err != nil {
		return s, err
	}
	monitors, err := monitorsOf(pid)
	if err != nil {
		return s, err
	}
	if len(monitors) != pods {
		return s, fmt.Errorf("%d nodekit-monitor children of nodekit-kubelet, want one per pod (%d)", len(monitors), pods)
	}
	mon0 := map[int]procfs.Stat{}
	for _, m := range monitors {
		st, err := procfs.ReadStat(m)
		if err != nil {
			return s, fmt.Errorf("monitor %d: %w", m, err)
		}
		mon0[m] = st
	}
	st0, err := procfs.ReadStat(pid)
	if err != nil {
		return s, err
	}
	cs0, _ := procfs.CtxSwitches(pid)
	t0 := time.Now()
	fmt.Printf("  sampling %d pods for %s\n", pods, window)
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return s, ctx.Err()
	case <-d.Done():
		return s, fmt.Errorf("nodekit-kubelet exited during the window: %v\n%s", d.Err(), d.LogTail(20))
	}
	st1, err := procfs.ReadStat(pid)
	if err != nil {
		return s, err
	}
	cs1, _ := procfs.CtxSwitches(pid)
	var monTicks uint64
	for _, m := range monitors {
		st, err := procfs.ReadStat(m)
		if err != nil {
			return s, fmt.Errorf("monitor %d ended during the window: %w", m, err)
		}
		monTicks += st.UTime + st.STime - mon0[m].UTime - mon0[m].STime
	}
	el := time.Since(t0).Seconds()
	s.Seconds = el
	cores := func(ticks uint64) float64 { return float64(ticks) / procfs.ClockTicks / el }
	s.KubeletUser, s.KubeletSys = cores(st1.UTime-st0.UTime), cores(st1.STime-st0.STime)
	s.KubeletCores = s.KubeletUser + s.KubeletSys
	s.ChildrenCores = cores(st1.CUTime + st1.CSTime - st0.CUTime - st0.CSTime)
	s.MonitorCores = cores(monTicks)
	s.Wakeups = float64(cs1-cs0) / el
	s.Threads = st1.Threads
	s.ThreadSyscalls = threadSyscalls(pid)
	if s.Kubelet, err = procfs.ReadMemory(pid); err != nil {
		return s, err
	}
	s.Monitors = len(monitors)
	for _, m := range monitors {
		mm, err := procfs.ReadMemory(m)
		if err != nil {
			return s, err
		}
		s.MonitorsMem.Rss += mm.Rss
		s.MonitorsMem.Pss += mm.Pss
		s.MonitorsMem.Anon += mm.Anon
	}
	m1, err := scrapeSocket(ctx, sock)
	if err != nil {
		return s, err
	}
	h := m1.histogram(mRelistDuration).minus(m0.histogram(mRelistDuration))
	s.Relists = h.count
	s.RelistMeanMs = h.mean() * 1000
	s.RelistP99Le = h.quantileBound(0.99) * 1000
	s.SyncsPerS = (m1.get(mWorkerSyncs) - m0.get(mWorkerSyncs)) / el
	return s, nil
}

// monitorsOf lists the nodekit-monitor children of pid.
func monitorsOf(pid int) ([]int, error) {
	procs, err := procfs.List()
	if err != nil {
		return nil, err
	}
	var out []int
	for _, p := range procs {
		if p.PPID == pid && len(p.Args) > 0 && filepath.Base(p.Args[0]) == "nodekit-monitor" {
			out = append(out, p.PID)
		}
	}
	return out, nil
}

// measureRelist times generic relists against the runtime at socket with
// relisttime.Measure, runs times (each a fresh generic PLEG: one cold relist,
// then warm ones).
func measureRelist(ctx context.Context, socket string, runs, warm int) (relistResult, error) {
	var r relistResult
	rt, err := criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + socket).WithConnectionTimeout(2 * time.Minute).Build(ctx)
	if err != nil {
		return r, fmt.Errorf("relist: connect %s: %w", socket, err)
	}
	defer rt.Close(context.Background())
	var cold, warmMeans []time.Duration
	for range runs {
		t, err := relisttime.Measure(ctx, rt, warm)
		if err != nil {
			return r, fmt.Errorf("relist: %w", err)
		}
		if r.Pods != 0 && t.Pods != r.Pods {
			return r, fmt.Errorf("relist: %d pods, then %d", r.Pods, t.Pods)
		}
		r.Pods = t.Pods
		cold = append(cold, t.Cold)
		warmMeans = append(warmMeans, t.Warm)
	}
	r.Cold, r.Warm = stats.Summarize(cold), stats.Summarize(warmMeans)
	fmt.Printf("  relist at %d pods: cold p50 %s ms (min %s, max %s), warm p50 %s ms\n", r.Pods, ms(r.Cold.P50), ms(r.Cold.Min), ms(r.Cold.Max), ms(r.Warm.P50))
	return r, nil
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("free port: not a TCP address")
	}
	return addr.Port, nil
}
