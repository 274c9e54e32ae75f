package pleg

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

// Every pair of states a container can be seen in at two relists (the kubelet's
// generateEvents).
func TestContainerEvents(t *testing.T) {
	n, r, x, u := stateNone, stateRunning, stateExited, stateUnknown
	S, D, R, C := ContainerStarted, ContainerDied, ContainerRemoved, ContainerChanged
	tests := []struct {
		from, to state
		want     []EventType
	}{
		{n, n, nil},
		{n, r, []EventType{S}},
		{n, x, []EventType{D}}, // started and exited within one period
		{n, u, []EventType{C}}, // created
		{r, n, []EventType{D, R}},
		{r, r, nil},
		{r, x, []EventType{D}},
		{r, u, []EventType{C}},
		{x, n, []EventType{R}}, // its death was reported before
		{x, r, []EventType{S}},
		{x, x, nil},
		{x, u, []EventType{C}},
		{u, n, []EventType{D, R}},
		{u, r, []EventType{S}},
		{u, x, []EventType{D}},
		{u, u, nil},
	}
	for _, tt := range tests {
		t.Run(tt.from.String()+"→"+tt.to.String(), func(t *testing.T) {
			var got []EventType
			for _, e := range containerEvents("p", "c", tt.from, tt.to) {
				if e.ID != "p" || e.Data != "c" {
					t.Errorf("event %+v is not about pod p, container c", e)
				}
				got = append(got, e.Type)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStateOfCRIStates(t *testing.T) {
	for cs, want := range map[runtimeapi.ContainerState]state{
		runtimeapi.ContainerState_CONTAINER_CREATED: stateUnknown,
		runtimeapi.ContainerState_CONTAINER_RUNNING: stateRunning,
		runtimeapi.ContainerState_CONTAINER_EXITED:  stateExited,
		runtimeapi.ContainerState_CONTAINER_UNKNOWN: stateUnknown,
	} {
		if got := containerState(cs); got != want {
			t.Errorf("container %v: %v, want %v", cs, got, want)
		}
	}
	if sandboxState(runtimeapi.PodSandboxState_SANDBOX_READY) != stateRunning ||
		sandboxState(runtimeapi.PodSandboxState_SANDBOX_NOTREADY) != stateExited {
		t.Error("sandbox states: READY is running, NOTREADY exited")
	}
}

// relistStep is the runtime's content at one relist and what the relist must
// report.
type relistStep struct {
	name   string
	pods   []*testPod
	events []Event
	// check inspects the cache after the relist.
	check func(t *testing.T, c Cache)
}

func containerState1(t *testing.T, c Cache, uid types.UID, id string) runtimeapi.ContainerState {
	t.Helper()
	st, err := c.Get(uid)
	if err != nil {
		t.Fatalf("cache of %s: %v", uid, err)
	}
	for _, cs := range st.ContainerStatuses {
		if cs.Id == id {
			return cs.State
		}
	}
	t.Fatalf("cache of %s has no container %s", uid, id)
	return 0
}

func TestRelistTransitions(t *testing.T) {
	const (
		running = runtimeapi.ContainerState_CONTAINER_RUNNING
		exited  = runtimeapi.ContainerState_CONTAINER_EXITED
		created = runtimeapi.ContainerState_CONTAINER_CREATED
	)
	pod := func(cs ...*critest.FakeContainer) *testPod {
		p := simplePod("p", -1)
		p.ctrs = cs
		return p
	}
	c := func(id string, st runtimeapi.ContainerState) *critest.FakeContainer {
		return newContainer("p", "p-sb", id, id, st, time.Duration(id[1]-'0')*time.Second)
	}
	steps := []relistStep{
		{name: "sandbox and created container appear", pods: []*testPod{pod(c("c1", created))},
			events: []Event{ev("p", ContainerChanged, "c1"), ev("p", PodSync, "p-sb")},
			check: func(t *testing.T, cache Cache) {
				st, _ := cache.Get("p")
				if st.Name != "name-p" || len(st.SandboxStatuses) != 1 || !slices.Equal(st.IPs, []string{"10.0.0.1"}) {
					t.Errorf("cached status %+v", st)
				}
			}},
		{name: "nothing changed", pods: []*testPod{pod(c("c1", created))}},
		{name: "started", pods: []*testPod{pod(c("c1", running))},
			events: []Event{ev("p", ContainerStarted, "c1")},
			check: func(t *testing.T, cache Cache) {
				if s := containerState1(t, cache, "p", "c1"); s != running {
					t.Errorf("cached c1 %v", s)
				}
			}},
		{name: "died", pods: []*testPod{pod(c("c1", exited))},
			events: []Event{ev("p", ContainerDied, "c1")},
			check: func(t *testing.T, cache Cache) {
				if s := containerState1(t, cache, "p", "c1"); s != exited {
					t.Errorf("cached c1 %v", s)
				}
			}},
		{name: "replaced: removed, and a new one started and exited within a period",
			pods:   []*testPod{pod(c("c2", exited))},
			events: []Event{ev("p", ContainerRemoved, "c1"), ev("p", ContainerDied, "c2")},
			check: func(t *testing.T, cache Cache) {
				st, _ := cache.Get("p")
				if got := ids(st.ContainerStatuses); !slices.Equal(got, []string{"c2"}) {
					t.Errorf("cached containers %v", got)
				}
			}},
		{name: "running container removed", pods: []*testPod{pod(c("c3", running))},
			events: []Event{ev("p", ContainerRemoved, "c2"), ev("p", ContainerStarted, "c3")}},
		{name: "removed while running", pods: []*testPod{pod()},
			events: []Event{ev("p", ContainerDied, "c3"), ev("p", ContainerRemoved, "c3")}},
		{name: "sandbox stops", pods: []*testPod{{uid: "p", sandboxes: []*critest.FakePodSandbox{newSandbox("p", "p-sb", false, 0, "")}}},
			events: []Event{ev("p", PodSync, "p-sb")},
			check: func(t *testing.T, cache Cache) {
				st, _ := cache.Get("p")
				if !slices.Equal(st.IPs, []string{"10.0.0.1"}) {
					t.Errorf("IPs of the stopped pod %v, want the last ones kept", st.IPs)
				}
			}},
		{name: "pod gone", pods: nil,
			events: []Event{ev("p", PodSync, "p-sb")},
			check: func(t *testing.T, cache Cache) {
				if st, _ := cache.Get("p"); len(st.SandboxStatuses) != 0 || st.Name != "" {
					t.Errorf("the gone pod is still cached: %+v", st)
				}
			}},
		{name: "objects without the pod uid label are ignored",
			pods: []*testPod{{uid: "", sandboxes: []*critest.FakePodSandbox{{PodSandboxStatus: runtimeapi.PodSandboxStatus{
				Id: "foreign", State: runtimeapi.PodSandboxState_SANDBOX_READY, Metadata: &runtimeapi.PodSandboxMetadata{Name: "x"}}}}}}},
	}
	f := newFakeRuntime()
	o, clk := testOptions(f)
	r := newRelister(o.withDefaults())
	for _, s := range steps {
		clk.Step(time.Second)
		f.set(s.pods...)
		if err := r.relist(context.Background()); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := drain(r.Watch()); !slices.Equal(got, s.events) {
			t.Fatalf("%s: events %s, want %s", s.name, fmtEvents(got), fmtEvents(s.events))
		}
		if s.check != nil {
			s.check(t, o.Cache)
		}
	}
}

// A relist inspects only the pods that changed, and then says the whole cache
// is current.
func TestRelistInspectsChangedPodsAndUpdatesCacheTime(t *testing.T) {
	f := newFakeRuntime()
	o, clk := testOptions(f)
	r := newRelister(o.withDefaults())
	a, b := simplePod("a", runtimeapi.ContainerState_CONTAINER_RUNNING), simplePod("b", runtimeapi.ContainerState_CONTAINER_RUNNING)
	f.set(a, b)
	mustRelist(t, r)
	if n := f.statusN.Load(); n != 4 {
		t.Fatalf("first relist made %d status calls, want 4 (both pods)", n)
	}
	clk.Step(time.Second)
	b.ctrs[0].State = runtimeapi.ContainerState_CONTAINER_EXITED
	f.set(a, b)
	f.statusN.Store(0)
	start := clk.Now()
	mustRelist(t, r)
	if n := f.statusN.Load(); n != 2 {
		t.Fatalf("second relist made %d status calls, want 2 (pod b only)", n)
	}
	// The unchanged pod a is "newer than" a time before the relist's start.
	select {
	case <-getNewerThan(o.Cache, "a", start.Add(-time.Millisecond)):
	case <-time.After(5 * time.Second):
		t.Fatal("the relist did not update the cache time")
	}
	st, _ := o.Cache.Get("b")
	if !st.TimeStamp.Equal(start) {
		t.Fatalf("pod b's status timestamp %v, want the relist start %v", st.TimeStamp, start)
	}
}

func TestRelistRetriesFailedInspection(t *testing.T) {
	f := newFakeRuntime()
	o, clk := testOptions(f)
	r := newRelister(o.withDefaults())
	f.set(simplePod("p", runtimeapi.ContainerState_CONTAINER_RUNNING))
	f.InjectError("ContainerStatus", status.Error(codes.Unavailable, "hiccup"))
	mustRelist(t, r)
	if got := drain(r.Watch()); len(got) != 0 {
		t.Fatalf("events %s for a pod whose inspection failed", fmtEvents(got))
	}
	if _, err := o.Cache.Get("p"); status.Code(err) != codes.Unavailable {
		t.Fatalf("cached error %v, want the inspection's", err)
	}
	clk.Step(time.Second)
	mustRelist(t, r)
	want := []Event{ev("p", ContainerStarted, "p-c"), ev("p", PodSync, "p-sb")}
	if got := drain(r.Watch()); !slices.Equal(got, want) {
		t.Fatalf("retry: events %s, want %s", fmtEvents(got), fmtEvents(want))
	}
	if _, err := o.Cache.Get("p"); err != nil {
		t.Fatalf("cached error %v after the retry", err)
	}
}

// A pod whose first inspection failed and that is gone by the next relist leaves
// nothing in the cache.
func TestRelistForgetsFailedPodThatWentAway(t *testing.T) {
	f := newFakeRuntime()
	o, clk := testOptions(f)
	r := newRelister(o.withDefaults())
	f.set(simplePod("p", runtimeapi.ContainerState_CONTAINER_RUNNING))
	f.InjectError("ContainerStatus", status.Error(codes.Unavailable, "hiccup"))
	mustRelist(t, r)
	if _, err := o.Cache.Get("p"); err == nil {
		t.Fatal("no error cached")
	}
	f.set()
	clk.Step(time.Second)
	mustRelist(t, r)
	if _, err := o.Cache.Get("p"); err != nil {
		t.Fatalf("the gone pod still has its error cached: %v", err)
	}
	if len(r.reinspect) != 0 {
		t.Fatalf("still to reinspect: %v", r.reinspect)
	}
}

func TestRelistListFailure(t *testing.T) {
	for _, call := range []string{"ListPodSandbox", "ListContainers"} {
		t.Run(call, func(t *testing.T) {
			f := newFakeRuntime()
			o, _ := testOptions(f)
			r := newRelister(o.withDefaults())
			f.set(simplePod("p", runtimeapi.ContainerState_CONTAINER_RUNNING))
			f.InjectError(call, status.Error(codes.Unavailable, "down"))
			if err := r.relist(context.Background()); err == nil || !strings.Contains(err.Error(), "list") {
				t.Fatalf("err = %v", err)
			}
			if ok, _ := r.Healthy(); ok {
				t.Fatal("healthy without a successful relist")
			}
			if got := drain(r.Watch()); len(got) != 0 {
				t.Fatalf("events %s from a failed relist", fmtEvents(got))
			}
		})
	}
}

func TestHealthy(t *testing.T) {
	f := newFakeRuntime()
	o, clk := testOptions(f)
	m := &recMetrics{}
	o.Metrics = m
	r := newRelister(o.withDefaults())
	if ok, err := r.Healthy(); ok || err == nil {
		t.Fatalf("before any relist: %v, %v; want unhealthy", ok, err)
	}
	start := clk.Now()
	mustRelist(t, r)
	steps := []struct {
		step time.Duration
		ok   bool
	}{
		{0, true},
		{3 * time.Minute, true}, // at the threshold
		{time.Second, false},    // past it
	}
	for _, s := range steps {
		clk.Step(s.step)
		ok, err := r.Healthy()
		if ok != s.ok || (err == nil) != s.ok {
			t.Fatalf("%v after the relist: %v, %v; want healthy=%v", clk.Since(start), ok, err, s.ok)
		}
		if !ok && !strings.Contains(err.Error(), "threshold") {
			t.Fatalf("error %q does not say why", err)
		}
	}
	if !m.lastSeen.Equal(start) {
		t.Fatalf("last seen %v, want %v", m.lastSeen, start)
	}
	f.InjectError("ListPodSandbox", status.Error(codes.Unavailable, "down"))
	if err := r.relist(context.Background()); err == nil {
		t.Fatal("relist succeeded while ListPodSandbox fails")
	}
	if ok, _ := r.Healthy(); ok {
		t.Fatal("a failed relist made the PLEG healthy")
	}
	mustRelist(t, r)
	if ok, err := r.Healthy(); !ok {
		t.Fatalf("after a successful relist: %v", err)
	}
}

// A pod whose inspection hangs does not hold up the others' events.
func TestSlowPodDoesNotStallOthers(t *testing.T) {
	f := newFakeRuntime()
	o, _ := testOptions(f)
	o.Concurrency = 2
	o.InspectTimeout = time.Minute
	r := newRelister(o.withDefaults())
	var pods []*testPod
	for _, uid := range []string{"a", "b", "c", "d"} {
		pods = append(pods, simplePod(uid, runtimeapi.ContainerState_CONTAINER_RUNNING))
	}
	f.set(pods...)
	release := f.blockStatus("a-c")
	defer release()
	done := make(chan error, 1)
	go func() { done <- r.relist(context.Background()) }()

	seen := map[types.UID]int{}
	for len(seen) < 3 || seen["b"]+seen["c"]+seen["d"] < 6 {
		e := next(t, r.Watch(), 5*time.Second)
		if e.ID == "a" {
			t.Fatalf("event %+v of the blocked pod", e)
		}
		seen[e.ID]++
	}
	select {
	case err := <-done:
		t.Fatalf("the relist finished (error %v) while pod a's inspection hangs", err)
	default:
	}
	release()
	if got := []Event{next(t, r.Watch(), 5*time.Second), next(t, r.Watch(), 5*time.Second)}; got[0].ID != "a" || got[1].ID != "a" {
		t.Fatalf("after release: %s, want pod a's events", fmtEvents(got))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A hanging inspection is cut at InspectTimeout; the pod is retried next relist.
func TestInspectTimeout(t *testing.T) {
	f := newFakeRuntime()
	o, clk := testOptions(f)
	o.InspectTimeout = 50 * time.Millisecond
	r := newRelister(o.withDefaults())
	f.set(simplePod("a", runtimeapi.ContainerState_CONTAINER_RUNNING), simplePod("b", runtimeapi.ContainerState_CONTAINER_RUNNING))
	release := f.blockStatus("a-c")
	defer release()
	done := make(chan error, 1)
	go func() { done <- r.relist(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the relist waits for the hanging pod beyond InspectTimeout")
	}
	for _, e := range drain(r.Watch()) {
		if e.ID != "b" {
			t.Fatalf("event %+v; only pod b's inspection succeeded", e)
		}
	}
	if _, err := o.Cache.Get("a"); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("pod a cached error %v, want DeadlineExceeded", err)
	}
	release()
	clk.Step(time.Second)
	mustRelist(t, r)
	want := []Event{ev("a", ContainerStarted, "a-c"), ev("a", PodSync, "a-sb")}
	if got := drain(r.Watch()); !slices.Equal(got, want) {
		t.Fatalf("retry: %s, want %s", fmtEvents(got), fmtEvents(want))
	}
}

// At most Concurrency pods are inspected at once, and that many are.
func TestConcurrencyBound(t *testing.T) {
	f := newFakeRuntime()
	o, _ := testOptions(f)
	o.Concurrency = 3
	r := newRelister(o.withDefaults())
	var pods []*testPod
	for i := range 20 {
		pods = append(pods, simplePod(fmt.Sprintf("p%02d", i), runtimeapi.ContainerState_CONTAINER_RUNNING))
	}
	f.set(pods...)
	var inFlight, peak atomic.Int64
	gate := make(chan struct{})
	var once sync.Once
	f.hook = func(string) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p; p = peak.Load() {
			if peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-gate
	}
	done := make(chan error, 1)
	go func() { done <- r.relist(context.Background()) }()
	waitFor(t, "3 inspections in flight", 5*time.Second, nil, func() bool { return inFlight.Load() == 3 })
	once.Do(func() { close(gate) })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 3 {
		t.Fatalf("peak of %d inspections at once, want 3", p)
	}
	if got := len(drain(r.Watch())); got != 40 {
		t.Fatalf("%d events, want 40", got)
	}
}

func TestDiscardWhenFull(t *testing.T) {
	f := newFakeRuntime()
	o, _ := testOptions(f)
	o.EventBuffer = 3
	m := &recMetrics{}
	o.Metrics = m
	r := newRelister(o.withDefaults())
	f.set(simplePod("a", runtimeapi.ContainerState_CONTAINER_RUNNING), simplePod("b", runtimeapi.ContainerState_CONTAINER_RUNNING))
	mustRelist(t, r)
	if got := len(drain(r.Watch())); got != 3 {
		t.Fatalf("%d events delivered, want 3 (the buffer)", got)
	}
	if m.discarded != 1 {
		t.Fatalf("%d discarded counted, want 1", m.discarded)
	}
	if m.events[ContainerStarted]+m.events[PodSync] != 3 {
		t.Fatalf("delivered counts %v", m.events)
	}
}

func TestRelistMetrics(t *testing.T) {
	f := newFakeRuntime()
	o, clk := testOptions(f)
	m := &recMetrics{}
	o.Metrics = m
	r := newRelister(o.withDefaults())
	mustRelist(t, r)
	clk.Step(1500 * time.Millisecond)
	mustRelist(t, r)
	if len(m.durations) != 2 {
		t.Fatalf("%d relist durations observed, want 2", len(m.durations))
	}
	if !slices.Equal(m.intervals, []time.Duration{1500 * time.Millisecond}) {
		t.Fatalf("intervals %v, want [1.5s]", m.intervals)
	}
}

// The running generic PLEG relists every RelistPeriod of its clock.
func TestGenericLoop(t *testing.T) {
	f := newFakeRuntime()
	o, clk := testOptions(f)
	p := NewGeneric(o)
	f.set(simplePod("p", runtimeapi.ContainerState_CONTAINER_RUNNING))
	p.Start()
	defer p.Stop()
	if e := next(t, p.Watch(), 5*time.Second); e.ID != "p" {
		t.Fatalf("first relist: %+v", e)
	}
	next(t, p.Watch(), 5*time.Second)
	waitFor(t, "the loop to wait for its period", 5*time.Second, nil, clk.HasWaiters)
	pod := simplePod("p", runtimeapi.ContainerState_CONTAINER_EXITED)
	f.set(pod)
	clk.Step(999 * time.Millisecond)
	select {
	case e := <-p.Watch():
		t.Fatalf("event %+v before the period passed", *e)
	case <-time.After(50 * time.Millisecond):
	}
	clk.Step(time.Millisecond)
	if e := next(t, p.Watch(), 5*time.Second); e != ev("p", ContainerDied, "p-c") {
		t.Fatalf("got %+v, want the death", e)
	}
	if ok, err := p.Healthy(); !ok {
		t.Fatal(err)
	}
	p.Stop()
	p.Stop() // idempotent
}
