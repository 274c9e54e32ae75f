package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	testclock "k8s.io/utils/clock/testing"
)

// A fakeSyncer records the pod workers' calls and answers them from a script.
// With a gate, every call waits for a token before it returns, so a test can
// do things while a sync is in progress.
type fakeSyncer struct {
	calls chan call
	gate  chan struct{}

	mu sync.Mutex
	// sync answers syncPod (default: not terminal, no retry, no error).
	sync func(pod *v1.Pod) (bool, time.Duration, error)
	// terminateErrs and cleanupErrs are returned by the next calls, in order.
	terminateErrs, cleanupErrs []error
	// changed is what every sync reports about runtime changes; minTimes
	// records the bound each sync and terminate call got.
	changed  bool
	minTimes []time.Time
}

type call struct {
	op      string // sync, terminate, cleanup
	version string // the pod's resourceVersion: which update the call saw
}

func (c call) String() string { return c.op + "@" + c.version }

func newFakeSyncer() *fakeSyncer { return &fakeSyncer{calls: make(chan call, 100)} }

func (f *fakeSyncer) record(op string, pod *v1.Pod) {
	f.calls <- call{op, pod.ResourceVersion}
	if f.gate != nil {
		<-f.gate
	}
}

func (f *fakeSyncer) syncPod(_ context.Context, pod *v1.Pod, minTime time.Time) syncResult {
	f.mu.Lock()
	f.minTimes = append(f.minTimes, minTime)
	f.mu.Unlock()
	f.record("sync", pod)
	f.mu.Lock()
	defer f.mu.Unlock()
	res := syncResult{changed: f.changed}
	if f.sync != nil {
		res.terminal, res.retry, res.err = f.sync(pod)
	}
	return res
}

func (f *fakeSyncer) terminatePod(_ context.Context, pod *v1.Pod, minTime time.Time) error {
	f.mu.Lock()
	f.minTimes = append(f.minTimes, minTime)
	f.mu.Unlock()
	f.record("terminate", pod)
	return f.pop(&f.terminateErrs)
}

// lastMinTimes returns the bounds of the calls so far.
func (f *fakeSyncer) lastMinTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.minTimes)
}

func (f *fakeSyncer) cleanupPod(_ context.Context, pod *v1.Pod) error {
	f.record("cleanup", pod)
	return f.pop(&f.cleanupErrs)
}

func (f *fakeSyncer) pop(errs *[]error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(*errs) == 0 {
		return nil
	}
	err := (*errs)[0]
	*errs = (*errs)[1:]
	return err
}

func (f *fakeSyncer) setSync(fn func(pod *v1.Pod) (bool, time.Duration, error)) {
	f.mu.Lock()
	f.sync = fn
	f.mu.Unlock()
}

// expect waits for the next call and checks it is want ("op@version"; version
// "*" matches any).
func (f *fakeSyncer) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case c := <-f.calls:
		if c.String() != want && c.op+"@*" != want {
			t.Fatalf("pod worker called %s, want %s", c, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("pod worker did not call %s within 10s", want)
	}
}

// expectNone checks that no call is pending.
func (f *fakeSyncer) expectNone(t *testing.T) {
	t.Helper()
	select {
	case c := <-f.calls:
		t.Fatalf("unexpected pod worker call %s", c)
	default:
	}
}

const (
	testResync = time.Minute
	testUID    = types.UID("uid-1")
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func testPod(version string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: testUID, ResourceVersion: version}}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestWorkers returns pod workers over f and a fake clock; the workers stop
// when the test ends.
func newTestWorkers(t *testing.T, f *fakeSyncer) (*podWorkers, *testclock.FakeClock, context.Context) {
	t.Helper()
	clk := testclock.NewFakeClock(t0)
	p := newPodWorkers(f, clk, testResync, discardLogger())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		if f.gate != nil {
			close(f.gate)
		}
		done := make(chan struct{})
		go func() { p.wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("pod workers did not exit after their context ended")
		}
	})
	return p, clk, ctx
}

// waitArmed waits until the worker went back to sleep with its timer set: the
// fake clock then has exactly one waiter, the worker's timer.
func waitArmed(t *testing.T, clk *testclock.FakeClock) {
	t.Helper()
	poll(t, "the pod worker to wait on its timer", func() bool { return clk.Waiters() == 1 })
}

// waitState waits until the worker of uid is in state want.
func waitState(t *testing.T, p *podWorkers, uid types.UID, want workerState) {
	t.Helper()
	poll(t, fmt.Sprintf("pod worker state %s", want), func() bool {
		st, ok := p.states()[uid]
		return ok && st == want
	})
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPodWorkersLatestUpdateWins(t *testing.T) {
	f := newFakeSyncer()
	f.gate = make(chan struct{})
	p, clk, ctx := newTestWorkers(t, f)

	p.update(ctx, testPod("1"))
	f.expect(t, "sync@1") // blocked in the gate
	// While the first sync runs: three more updates and some kicks.
	p.update(ctx, testPod("2"))
	p.kick(testUID)
	p.update(ctx, testPod("3"))
	p.kick(testUID)
	p.kick(testUID)
	f.gate <- struct{}{}
	// They collapse into one more sync, of the latest pod.
	f.expect(t, "sync@3")
	f.gate <- struct{}{}
	waitArmed(t, clk)
	f.expectNone(t)

	// The next thing the worker does is the removal: no sync was left queued.
	p.remove(testUID)
	f.expect(t, "terminate@3")
	f.gate <- struct{}{}
	f.expect(t, "cleanup@3")
	f.gate <- struct{}{}
	poll(t, "the worker to exit", func() bool { return !p.known(testUID) })
}

func TestPodWorkersRemovalTerminatesThenCleansUp(t *testing.T) {
	f := newFakeSyncer()
	p, clk, ctx := newTestWorkers(t, f)

	p.update(ctx, testPod("1"))
	f.expect(t, "sync@1")
	waitArmed(t, clk)
	if st := p.states()[testUID]; st != stateSyncing {
		t.Fatalf("state %s, want syncing", st)
	}
	p.remove(testUID)
	f.expect(t, "terminate@1")
	f.expect(t, "cleanup@1")
	poll(t, "the worker to exit", func() bool { return p.count() == 0 })
	if p.known(testUID) {
		t.Error("worker still known after cleanup")
	}
	// Kicks and removals of a pod without a worker are no-ops.
	p.kick(testUID)
	p.remove(testUID)
	f.expectNone(t)

	// The same UID added again gets a new worker and a new life.
	p.update(ctx, testPod("2"))
	f.expect(t, "sync@2")
}

func TestPodWorkersTerminalPodStopsAndStays(t *testing.T) {
	f := newFakeSyncer()
	p, clk, ctx := newTestWorkers(t, f)
	f.setSync(func(*v1.Pod) (bool, time.Duration, error) { return true, 0, nil })

	p.update(ctx, testPod("1"))
	f.expect(t, "sync@1")
	f.expect(t, "terminate@1")
	waitState(t, p, testUID, stateTerminated)

	// A finished pod does not run again: updates, kicks and time change nothing.
	p.update(ctx, testPod("2"))
	p.kick(testUID)
	clk.Step(10 * testResync)
	p.kick(testUID)
	if !p.known(testUID) {
		t.Fatal("a terminated pod's worker must stay until the pod is removed")
	}
	// Only its removal does: a cleanup, without a second termination.
	p.remove(testUID)
	f.expect(t, "cleanup@2")
	poll(t, "the worker to exit", func() bool { return !p.known(testUID) })
	f.expectNone(t)
}

func TestPodWorkersSyncRetry(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		retry time.Duration
		err   error
		want  time.Duration // when the next sync comes
	}{
		{"quiet pod: resync period", 0, nil, testResync},
		{"back-off ends", 5 * time.Second, nil, 5 * time.Second},
		{"retry beyond the resync period", 5 * time.Minute, nil, testResync},
		{"error: error wait", 0, boom, 10 * time.Second},
		{"error with a shorter back-off", 3 * time.Second, boom, 3 * time.Second},
		{"error with a longer back-off", 30 * time.Second, boom, 10 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSyncer()
			p, clk, ctx := newTestWorkers(t, f)
			f.setSync(func(*v1.Pod) (bool, time.Duration, error) { return false, tc.retry, tc.err })
			p.update(ctx, testPod("1"))
			f.expect(t, "sync@1")
			waitArmed(t, clk)
			clk.Step(tc.want - time.Millisecond)
			if clk.Waiters() != 1 {
				t.Fatalf("the worker's timer fired before %s", tc.want)
			}
			f.expectNone(t)
			clk.Step(time.Millisecond)
			f.expect(t, "sync@1")
		})
	}
}

func TestPodWorkersTerminationAndCleanupRetry(t *testing.T) {
	f := newFakeSyncer()
	p, clk, ctx := newTestWorkers(t, f)
	f.terminateErrs = []error{errors.New("stop failed")}
	f.cleanupErrs = []error{errors.New("remove failed")}
	retry := p.errorWait / 5

	p.update(ctx, testPod("1"))
	f.expect(t, "sync@1")
	waitArmed(t, clk)
	p.remove(testUID)
	f.expect(t, "terminate@1") // fails
	waitArmed(t, clk)
	clk.Step(retry - time.Millisecond)
	f.expectNone(t)
	clk.Step(time.Millisecond)
	f.expect(t, "terminate@1")
	f.expect(t, "cleanup@1") // fails
	waitArmed(t, clk)
	if !p.known(testUID) {
		t.Fatal("worker exited although its cleanup failed")
	}
	clk.Step(retry)
	f.expect(t, "cleanup@1")
	poll(t, "the worker to exit", func() bool { return !p.known(testUID) })
	f.expectNone(t)
}

func TestPodWorkersKick(t *testing.T) {
	f := newFakeSyncer()
	p, clk, ctx := newTestWorkers(t, f)
	p.update(ctx, testPod("1"))
	f.expect(t, "sync@1")
	waitArmed(t, clk)
	// A kick syncs at once, without waiting for the resync period.
	p.kick(testUID)
	f.expect(t, "sync@1")
	waitArmed(t, clk)
	p.kick("some-other-pod")
	f.expectNone(t)
	if p.count() != 1 {
		t.Errorf("%d workers, want 1", p.count())
	}
}

// A pod removed and added again (its manifest put back with the same content,
// so the same UID) while its worker is terminating it must run again once the
// old instance is cleaned up, as upstream's restartRequested does.
func TestPodWorkersReAddedWhileTerminating(t *testing.T) {
	f := newFakeSyncer()
	f.gate = make(chan struct{})
	p, _, ctx := newTestWorkers(t, f)

	p.update(ctx, testPod("1"))
	f.expect(t, "sync@1")
	f.gate <- struct{}{}
	p.remove(testUID)
	f.expect(t, "terminate@1") // blocked in the gate
	p.update(ctx, testPod("2"))
	f.gate <- struct{}{}
	f.expect(t, "cleanup@*")
	f.gate <- struct{}{}
	f.expect(t, "sync@2")
	f.gate <- struct{}{}
	if !p.known(testUID) {
		t.Error("the re-added pod has no worker")
	}

	// Added again during the cleanup, the last moment before the worker exits.
	p.remove(testUID)
	f.expect(t, "terminate@2")
	f.gate <- struct{}{}
	f.expect(t, "cleanup@2")
	p.update(ctx, testPod("3"))
	f.gate <- struct{}{}
	f.expect(t, "sync@3")
	f.gate <- struct{}{}

	// Removed, re-added and removed again: it goes for good.
	p.remove(testUID)
	f.expect(t, "terminate@3")
	p.update(ctx, testPod("4"))
	p.remove(testUID)
	f.gate <- struct{}{}
	f.expect(t, "cleanup@*")
	f.gate <- struct{}{}
	poll(t, "the worker to exit", func() bool { return !p.known(testUID) })
	f.expectNone(t)
}

func TestPodWorkersObserve(t *testing.T) {
	f := newFakeSyncer()
	p, _, ctx := newTestWorkers(t, f)
	var mu sync.Mutex
	var seen []workerState
	p.onSync = func(s workerState, _ time.Duration, _ error) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}
	p.update(ctx, testPod("1"))
	f.expect(t, "sync@1")
	p.remove(testUID)
	f.expect(t, "terminate@1")
	f.expect(t, "cleanup@1")
	poll(t, "the worker to exit", func() bool { return !p.known(testUID) })
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "[syncing terminating terminated]" {
		t.Errorf("observed %v, want one sync, one termination, one cleanup", seen)
	}
}

// nilPodSyncer fails the test if a worker syncs before it has its pod.
type nilPodSyncer struct {
	t      *testing.T
	synced chan types.UID
}

func (s nilPodSyncer) syncPod(_ context.Context, pod *v1.Pod, _ time.Time) syncResult {
	if pod == nil {
		s.t.Error("syncPod called with a nil pod")
		return syncResult{}
	}
	s.synced <- pod.UID
	return syncResult{}
}
func (nilPodSyncer) terminatePod(context.Context, *v1.Pod, time.Time) error { return nil }
func (nilPodSyncer) cleanupPod(context.Context, *v1.Pod) error              { return nil }

// With the real clock a new worker's first timer fires at once, possibly
// before update gave it its pod: the pod must be there from the start.
func TestPodWorkersFirstSyncHasThePod(t *testing.T) {
	const n = 200
	s := nilPodSyncer{t: t, synced: make(chan types.UID, 2*n)}
	p := newPodWorkers(s, clock.RealClock{}, time.Hour, discardLogger())
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); p.wait() }()
	for i := range n {
		pod := testPod("1")
		pod.Name, pod.UID = fmt.Sprint("p", i), types.UID(fmt.Sprint("uid-", i))
		p.update(ctx, pod)
	}
	seen := map[types.UID]bool{}
	for len(seen) < n {
		select {
		case uid := <-s.synced:
			seen[uid] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d pods synced", len(seen), n)
		}
	}
}

// A pod whose manifest changed (same namespace and name, new UID) starts only
// once the previous instance has stopped, as upstream's static pods do.
func TestPodWorkersNewInstanceWaitsForThePrevious(t *testing.T) {
	f := newFakeSyncer()
	f.gate = make(chan struct{})
	p, _, ctx := newTestWorkers(t, f)
	old := testPod("1")
	next := testPod("2")
	next.UID = "uid-2"
	other := testPod("3")
	other.Name, other.UID = "other", "uid-3"

	p.update(ctx, old)
	f.expect(t, "sync@1")
	f.gate <- struct{}{}
	// As the agent applies a source update: the new pod first, then the
	// removal of the old one.
	p.update(ctx, next)
	p.update(ctx, other)
	f.expect(t, "sync@3") // another pod is not held up
	f.gate <- struct{}{}
	poll(t, "the new instance to wait", func() bool {
		p.mu.Lock()
		w := p.workers["uid-2"]
		p.mu.Unlock()
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.waiting
	})
	p.remove(testUID)
	f.expect(t, "terminate@1")
	f.expectNone(t) // the new instance still waits while the old one stops
	f.gate <- struct{}{}
	// Then the new instance syncs, while the old one is cleaned up.
	got := map[string]bool{}
	for range 2 {
		select {
		case c := <-f.calls:
			got[c.String()] = true
			f.gate <- struct{}{}
		case <-time.After(10 * time.Second):
			t.Fatalf("calls after the old instance stopped: %v, want sync@2 and cleanup@1", got)
		}
	}
	if !got["sync@2"] || !got["cleanup@1"] {
		t.Errorf("calls after the old instance stopped: %v, want sync@2 and cleanup@1", got)
	}
}

// A worker asks each sync for a runtime status newer than the end of its last
// sync that changed the pod in the runtime: a sync that changed nothing leaves
// the bound where it was (the PLEG cache answers the next one).
func TestPodWorkerMinTimeFollowsChanges(t *testing.T) {
	f := newFakeSyncer()
	p, clk, ctx := newTestWorkers(t, f)
	f.mu.Lock()
	f.changed = true
	f.mu.Unlock()
	p.update(ctx, testPod("1"))
	f.expect(t, "sync@1")
	// The worker notes the change once the sync has returned, before it arms
	// its resync timer.
	waitArmed(t, clk)
	clk.Step(time.Second)
	f.mu.Lock()
	f.changed = false
	f.mu.Unlock()
	p.update(ctx, testPod("2"))
	f.expect(t, "sync@2")
	waitArmed(t, clk)
	clk.Step(time.Second)
	p.update(ctx, testPod("3"))
	f.expect(t, "sync@3")
	p.remove(testUID)
	f.expect(t, "terminate@3")
	f.expect(t, "cleanup@3")
	got := f.lastMinTimes()
	want := []time.Time{{}, t0, t0, t0}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Fatalf("minTime of sync, sync, sync, terminate: got %v, want %v", got, want)
	}
}
