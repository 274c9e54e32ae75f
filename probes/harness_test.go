package probes

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"
	utilexec "k8s.io/utils/exec"
)

// waitFor bounds how long a test waits for a worker to do something.
const waitFor = 10 * time.Second

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeStatus is a StatusProvider tests write to.
type fakeStatus struct {
	mu sync.Mutex
	m  map[types.UID]v1.PodStatus
}

func (f *fakeStatus) GetPodStatus(uid types.UID) (v1.PodStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.m[uid]
	return *s.DeepCopy(), ok
}

func (f *fakeStatus) set(uid types.UID, s v1.PodStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[types.UID]v1.PodStatus{}
	}
	f.m[uid] = s
}

// execCall records one ExecSync.
type execCall struct {
	id      string
	cmd     []string
	timeout time.Duration
	at      time.Time
}

// fakeExec is an ExecRunner whose answers are scripted per command (its
// first word): each call takes the next answer; the last one repeats.
type fakeExec struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	plans map[string][]error
	calls []execCall
}

func (f *fakeExec) ExecSync(_ context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, execCall{id: id, cmd: cmd, timeout: timeout, at: f.clock.Now()})
	plan := f.plans[cmd[0]]
	if len(plan) == 0 {
		return []byte("ok"), nil, nil
	}
	err := plan[0]
	if len(plan) > 1 {
		f.plans[cmd[0]] = plan[1:]
	}
	return nil, []byte("stderr"), err
}

// plan scripts the answers to cmd: true = exit 0, false = exit 1.
func (f *fakeExec) plan(cmd string, answers ...bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.plans == nil {
		f.plans = map[string][]error{}
	}
	errs := make([]error, len(answers))
	for i, ok := range answers {
		if !ok {
			errs[i] = exitError(1)
		}
	}
	f.plans[cmd] = errs
}

func (f *fakeExec) planErrors(cmd string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.plans == nil {
		f.plans = map[string][]error{}
	}
	f.plans[cmd] = errs
}

// callsOf returns the calls of cmd so far.
func (f *fakeExec) callsOf(cmd string) []execCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []execCall
	for _, c := range f.calls {
		if c.cmd[0] == cmd {
			out = append(out, c)
		}
	}
	return out
}

func exitError(code int) error {
	return utilexec.CodeExitError{Err: errors.New("command exited"), Code: code}
}

// recordingClock wraps a fake clock and records the tickers and timers
// asked for.
type recordingClock struct {
	*testingclock.FakeClock
	mu      sync.Mutex
	tickers []time.Duration
	timers  []time.Duration
}

func (c *recordingClock) NewTicker(d time.Duration) clock.Ticker {
	c.mu.Lock()
	c.tickers = append(c.tickers, d)
	c.mu.Unlock()
	return c.FakeClock.NewTicker(d)
}

func (c *recordingClock) NewTimer(d time.Duration) clock.Timer {
	c.mu.Lock()
	c.timers = append(c.timers, d)
	c.mu.Unlock()
	return c.FakeClock.NewTimer(d)
}

func (c *recordingClock) recorded() (tickers, timers []time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.tickers), slices.Clone(c.timers)
}

// harness runs a manager on a fake clock; workers report each loop
// iteration so tests step the clock in lockstep with them.
type harness struct {
	t      *testing.T
	clock  *recordingClock
	status *fakeStatus
	exec   *fakeExec
	m      *manager

	mu    sync.Mutex
	iters map[probeKey]chan bool
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	baseline := runtime.NumGoroutine()
	h := &harness{
		t:      t,
		clock:  &recordingClock{FakeClock: testingclock.NewFakeClock(t0)},
		status: &fakeStatus{},
		iters:  map[probeKey]chan bool{},
	}
	h.exec = &fakeExec{clock: h.clock}
	pm, err := New(Options{
		Exec:   h.exec,
		Status: h.status,
		Clock:  h.clock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.m = pm.(*manager)
	h.m.jitter = func(time.Duration) time.Duration { return 0 }
	h.m.probed = func(w *worker, keepGoing bool) { h.iterChan(w.key) <- keepGoing }
	t.Cleanup(func() {
		h.m.Stop()
		if n := h.m.workerCount(); n != 0 {
			t.Errorf("after Stop: %d workers left", n)
		}
		waitGoroutines(t, baseline)
	})
	return h
}

func (h *harness) iterChan(k probeKey) chan bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.iters[k]
	if !ok {
		ch = make(chan bool, 1000)
		h.iters[k] = ch
	}
	return ch
}

// waitIter waits for the next loop iteration of worker (pod, container, t)
// and returns whether it decided to go on.
func (h *harness) waitIter(pod *v1.Pod, container string, t ProbeType) bool {
	h.t.Helper()
	select {
	case keep := <-h.iterChan(probeKey{pod.UID, container, t}):
		return keep
	case <-time.After(waitFor):
		h.t.Fatalf("%s worker of %s/%s did not probe within %s", t, pod.Name, container, waitFor)
		return false
	}
}

// step moves the clock by d and waits for one iteration of each given worker.
func (h *harness) step(d time.Duration, pod *v1.Pod, container string, types ...ProbeType) {
	h.t.Helper()
	h.clock.Step(d)
	for _, t := range types {
		h.waitIter(pod, container, t)
	}
}

// drain returns the updates waiting on t's channel.
func (h *harness) drain(t ProbeType) []Update {
	var out []Update
	for {
		select {
		case u := <-h.m.updates[t]:
			out = append(out, u)
		default:
			return out
		}
	}
}

// drainResults returns the results of the updates waiting on t's channel.
func (h *harness) drainResults(t ProbeType) []Result {
	var out []Result
	for _, u := range h.drain(t) {
		out = append(out, u.Result)
	}
	return out
}

// waitGoroutines waits until the goroutine count is back to baseline.
func waitGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Errorf("goroutines: %d, want <= %d\n%s", runtime.NumGoroutine(), baseline, buf[:n])
			return
		}
		runtime.Gosched()
	}
}

// execProbe returns an exec probe running cmd.
func execProbeSpec(cmd string) *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{cmd}}}}
}

// testPod returns a pod with one container "c".
func testPod(uid string, c v1.Container) *v1.Pod {
	c.Name = "c"
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-" + uid, Namespace: "ns", UID: types.UID(uid)},
		Spec:       v1.PodSpec{Containers: []v1.Container{c}, RestartPolicy: v1.RestartPolicyAlways},
	}
}

// running is the status of a pod whose containers named run since startedAt
// with the given container ID.
func running(id string, startedAt time.Time, names ...string) v1.PodStatus {
	s := v1.PodStatus{Phase: v1.PodRunning, PodIP: "127.0.0.1"}
	for _, n := range names {
		s.ContainerStatuses = append(s.ContainerStatuses, v1.ContainerStatus{
			Name:        n,
			ContainerID: "nodekit://" + id,
			State:       v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(startedAt)}},
		})
	}
	return s
}

func resultsString(rs []Result) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, ",")
}
