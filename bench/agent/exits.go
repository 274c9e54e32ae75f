package main

// Part (a): container exit → pod status updated. An in-process shim and agent
// (as nodekit-kubelet wires them: the agent reaches the shim through
// k8s.io/cri-client over a unix socket), the agent's status sink timestamping
// every Put. Each of n static pods runs one `sleep 100000` container with
// restartPolicy Never; the benchmark SIGKILLs each container's init process in
// turn and times until the first Put whose status shows that container
// terminated. Evented PLEG first, then generic, each with its own agent and pods
// on the same shim.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/bench/internal/stats"
)

type exitOptions struct {
	n          int           // exits per PLEG
	gap        time.Duration // least pause before each kill
	jitter     time.Duration // plus a random pause up to this (spreads kills over the relist period)
	timeout    time.Duration // per exit
	cpuProfile string        // write a CPU profile of the evented exits here
}

// exitResult is one PLEG's exit → status latency.
type exitResult struct {
	PLEG      string        `json:"pleg"`
	Evented   bool          `json:"evented_verified"` // the agent's PLEG followed container events throughout
	Pods      int           `json:"pods"`
	StartPods string        `json:"start_all_pods"`
	Latency   stats.Summary `json:"kill_to_status_put"`
	// CRIEvent: kill → the benchmark's own GetContainerEvents subscriber had the
	// CONTAINER_STOPPED event (what the runtime contributes).
	CRIEvent stats.Summary `json:"kill_to_cri_event"`
	Missed   int           `json:"missed"`
	// Relists made by the agent's PLEG while the exits were measured, and the
	// measurement's length: generic relists every second, evented only as a
	// safety net.
	Relists        int       `json:"relists"`
	Seconds        float64   `json:"seconds"`
	StreamErrors   int       `json:"event_stream_errors"`
	StatusPuts     int       `json:"status_puts"`
	Samples        []float64 `json:"samples_ms"`
	lat, criEvents []time.Duration
}

// criEvents records when the benchmark's own container event subscriber saw
// each container stop.
type criEvents struct {
	mu      sync.Mutex
	stopped map[string]time.Time
	waiters map[string]chan struct{}
}

func subscribeEvents(ctx context.Context, c runtime.RuntimeServiceClient) (*criEvents, error) {
	stream, err := c.GetContainerEvents(ctx, &runtime.GetEventsRequest{})
	if err != nil {
		return nil, fmt.Errorf("GetContainerEvents: %w", err)
	}
	if _, err := stream.Header(); err != nil {
		return nil, fmt.Errorf("GetContainerEvents: %w", err)
	}
	e := &criEvents{stopped: map[string]time.Time{}, waiters: map[string]chan struct{}{}}
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			now := time.Now()
			if ev.GetContainerEventType() != runtime.ContainerEventType_CONTAINER_STOPPED_EVENT {
				continue
			}
			e.mu.Lock()
			id := ev.GetContainerId()
			if _, ok := e.stopped[id]; !ok {
				e.stopped[id] = now
				if ch, ok := e.waiters[id]; ok {
					close(ch)
				}
			}
			e.mu.Unlock()
		}
	}()
	return e, nil
}

// wait returns when container id was seen stopping, waiting up to d.
func (e *criEvents) wait(id string, d time.Duration) (time.Time, bool) {
	e.mu.Lock()
	if t, ok := e.stopped[id]; ok {
		e.mu.Unlock()
		return t, true
	}
	ch, ok := e.waiters[id]
	if !ok {
		ch = make(chan struct{})
		e.waiters[id] = ch
	}
	e.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(d):
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.stopped[id]
	return t, ok
}

// measureExits runs part (a) for each PLEG in plegs on one shim.
func measureExits(ctx context.Context, w *workspace, o options) ([]*exitResult, error) {
	net, err := w.network()
	if err != nil {
		return nil, err
	}
	fmt.Println("exits: starting an in-process shim")
	s, err := startShim(ctx, w, shimOptions{
		bin:          o.bin,
		image:        filepath.Join(o.images, "busybox.tar"),
		dir:          w.path("shim"),
		cniConfDir:   net.confDir,
		cgroupParent: w.cgroup + "/shim",
	})
	if err != nil {
		return nil, err
	}
	var out []*exitResult
	for _, p := range o.plegs {
		r, err := measureExitsWith(ctx, w, s, p, o.exits)
		if r != nil {
			out = append(out, r)
		}
		if err != nil {
			return out, fmt.Errorf("exits, %s PLEG: %w", p, err)
		}
	}
	return out, nil
}

func measureExitsWith(ctx context.Context, w *workspace, s *shim, plegName string, o exitOptions) (res *exitResult, err error) {
	dir := w.path("exits-" + plegName)
	manifests := filepath.Join(dir, "manifests")
	prefix := "exit-" + plegName[:1]
	if err := writeManifests(manifests, prefix, 0, o.n, v1.RestartPolicyNever); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cfg, err := agent.LoadConfig("")
	if err != nil {
		return nil, err
	}
	cfg.RootDir = filepath.Join(dir, "root")
	cfg.NodeName = nodeName
	cfg.NodeIP = "127.0.0.1"
	cfg.Kubelet.StaticPodPath = manifests
	cfg.Kubelet.PodLogsDir = filepath.Join(dir, "logs")
	cfg.Kubelet.CgroupRoot = w.cgroup + "/exits-" + plegName
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// k8s.io/cri-client logs through klog: into the agent's log, not stderr.
	klog.SetSlogLogger(log.With("component", "cri-client"))
	defer klog.SetSlogLogger(discardLogger)
	rec := newRecorder()
	reg := prometheus.NewRegistry()
	a, err := agent.New(agent.Options{
		Config:             cfg,
		Runtime:            s.rt,
		Images:             s.img,
		Logger:             log,
		Registry:           reg,
		DisableEventedPLEG: plegName == "generic",
		StopPodsOnExit:     true,
		DisableServer:      true,
		StatusSink:         rec,
	})
	if err != nil {
		return nil, err
	}
	// The agent runs until this function is done (not until ctx: on an
	// interrupt it must still stop its pods).
	actx, stopAgent := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	started := time.Now()
	go func() {
		runErr = a.Run(actx)
		close(done)
	}()
	defer func() {
		fmt.Printf("exits, %s PLEG: stopping the agent and its pods\n", plegName)
		stopAgent()
		select {
		case <-done:
			if runErr != nil && err == nil {
				err = fmt.Errorf("agent: %w", runErr)
			}
		case <-time.After(4 * time.Minute):
			if err == nil {
				err = errors.New("the agent did not stop within 4 minutes")
			}
		}
	}()

	ectx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	events, err := subscribeEvents(ectx, s.client)
	if err != nil {
		return nil, err
	}

	fmt.Printf("exits, %s PLEG: waiting for %d pods to run\n", plegName, o.n)
	pods, err := waitRecorded(ctx, rec, prefix, o.n, 5*time.Minute, done)
	if err != nil && runErr != nil {
		err = fmt.Errorf("%w: %w", err, runErr)
	}
	if err != nil {
		return nil, err
	}
	res = &exitResult{PLEG: plegName, Pods: o.n, StartPods: time.Since(started).Round(time.Millisecond).String()}
	// Let the start-up settle (the last syncs, the first status writes).
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return res, err
	}
	m0, err := scrapeRegistry(reg)
	if err != nil {
		return res, err
	}
	if plegName == "evented" && o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return res, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return res, err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
			fmt.Printf("exits: CPU profile of the evented exits written to %s\n", o.cpuProfile)
		}()
	}
	fmt.Printf("exits, %s PLEG: killing %d containers one at a time\n", plegName, o.n)
	t0 := time.Now()
	for i := range o.n {
		p := pods[podName(manifestName(prefix, i))]
		lat, ev, err := killAndWait(ctx, s, rec, events, p.containerID, o)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Missed++
			fmt.Printf("exits, %s PLEG: exit %d: %v\n", plegName, i, err)
			if res.Missed > 5 {
				return res, fmt.Errorf("%d exits missed: %w", res.Missed, err)
			}
			continue
		}
		res.lat = append(res.lat, lat)
		if ev > 0 {
			res.criEvents = append(res.criEvents, ev)
		}
	}
	res.Seconds = time.Since(t0).Seconds()
	m1, err := scrapeRegistry(reg)
	if err != nil {
		return res, err
	}
	res.Relists = int(m1.histogram(mRelistDuration).count - m0.histogram(mRelistDuration).count)
	res.StreamErrors = int(m1.get(mStreamErr))
	res.Evented = plegName == "evented" && m1.get(mStreamOK) >= 1 && res.StreamErrors == 0
	res.StatusPuts = rec.putCount()
	res.Latency, res.CRIEvent = stats.Summarize(res.lat), stats.Summarize(res.criEvents)
	for _, d := range res.lat {
		res.Samples = append(res.Samples, float64(d.Microseconds())/1000)
	}
	fmt.Printf("exits, %s PLEG: p50 %s ms, p99 %s ms, max %s ms (%d exits, %d relists in %.0f s)\n",
		plegName, ms(res.Latency.P50), ms(res.Latency.P99), ms(res.Latency.Max), res.Latency.N, res.Relists, res.Seconds)
	return res, nil
}

// waitRecorded waits until the recorder shows the n pods prefix-<i> running,
// and returns them by pod name.
func waitRecorded(ctx context.Context, rec *recorder, prefix string, n int, limit time.Duration, agentDone <-chan struct{}) (map[string]recordedPod, error) {
	deadline := time.Now().Add(limit)
	for {
		run := rec.running()
		have := 0
		for i := range n {
			if p, ok := run[podName(manifestName(prefix, i))]; ok && p.containerID != "" {
				have++
			}
		}
		if have == n {
			return run, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d pods running after %s", have, n, limit)
		}
		select {
		case <-agentDone:
			return nil, errors.New("the agent stopped")
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// killAndWait SIGKILLs container id's init process (pidfd, after a random
// pause) and returns how long until the agent's first status Put showing the
// container terminated, and until the benchmark's own CRI event (0 if none).
func killAndWait(ctx context.Context, s *shim, rec *recorder, events *criEvents, id string, o exitOptions) (time.Duration, time.Duration, error) {
	pid, err := initPid(ctx, s.client, id)
	if err != nil {
		return 0, 0, err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("pidfd_open %d (container %.12s): %w", pid, id, err)
	}
	defer unix.Close(pidfd)
	pause := o.gap
	if o.jitter > 0 {
		pause += mrand.N(o.jitter)
	}
	if err := sleepCtx(ctx, pause); err != nil {
		return 0, 0, err
	}
	ch := rec.terminatedCh(id)
	t0 := time.Now()
	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil {
		return 0, 0, fmt.Errorf("kill container %.12s (pid %d): %w", id, pid, err)
	}
	select {
	case <-ch:
	case <-time.After(o.timeout):
		return 0, 0, fmt.Errorf("container %.12s: no status showing it terminated within %s", id, o.timeout)
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	t1, _ := rec.terminatedAt(id)
	var ev time.Duration
	if at, ok := events.wait(id, time.Second); ok {
		ev = at.Sub(t0)
	}
	return t1.Sub(t0), ev, nil
}

// initPid returns the host pid of a running container's init process, from
// ContainerStatus' verbose info ({"info": "{... \"pid\": N ...}"}).
func initPid(ctx context.Context, c runtime.RuntimeServiceClient, id string) (int, error) {
	st, err := c.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		return 0, fmt.Errorf("ContainerStatus %.12s: %w", id, err)
	}
	if s := st.GetStatus().GetState(); s != runtime.ContainerState_CONTAINER_RUNNING {
		return 0, fmt.Errorf("container %.12s is %s, want running", id, s)
	}
	var v struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["info"]), &v); err != nil {
		return 0, fmt.Errorf("container %.12s: verbose ContainerStatus info: %w", id, err)
	}
	if v.Pid <= 0 {
		return 0, fmt.Errorf("container %.12s: verbose ContainerStatus info has no pid", id)
	}
	return v.Pid, nil
}

// discardLogger drops everything (k8s.io/cri-client's klog output outside the
// exit measurements, the relist timing PLEG's logs).
var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

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
