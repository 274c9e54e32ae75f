package pleg

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

const (
	cCreated = runtimeapi.ContainerState_CONTAINER_CREATED
	cRunning = runtimeapi.ContainerState_CONTAINER_RUNNING
	cExited  = runtimeapi.ContainerState_CONTAINER_EXITED
)

// sandboxStatus and containerStatus build CRI statuses of pod "p" as events carry
// them.
func sandboxStatus(id string, ready bool, created time.Duration) *runtimeapi.PodSandboxStatus {
	sb := newSandbox("p", id, ready, created, "")
	if ready {
		sb.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: "10.0.0.9"}
	}
	return &sb.PodSandboxStatus
}

func containerStatus(id string, st runtimeapi.ContainerState, created time.Duration) *runtimeapi.ContainerStatus {
	return &newContainer("p", "", id, "app", st, created).ContainerStatus
}

func event(id string, typ runtimeapi.ContainerEventType, at time.Duration, sb *runtimeapi.PodSandboxStatus, cs ...*runtimeapi.ContainerStatus) *runtimeapi.ContainerEventResponse {
	return &runtimeapi.ContainerEventResponse{
		ContainerId:        id,
		ContainerEventType: typ,
		CreatedAt:          t0.Add(at).UnixNano(),
		PodSandboxStatus:   sb,
		ContainersStatuses: cs,
	}
}

func TestEventMapping(t *testing.T) {
	const (
		created = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
		started = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
		stopped = runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
		deleted = runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
	)
	sb := sandboxStatus("sb", true, 0)
	tests := []struct {
		name   string
		cached []*runtimeapi.ContainerStatus // with sandbox sb, at t0+1s (nil: nothing cached)
		event  *runtimeapi.ContainerEventResponse
		want   []Event
		// wantContainers: the cached containers afterwards (nil: pod not cached)
		wantContainers []string
		wantTime       time.Time
	}{
		{"container created", nil,
			event("c", created, 2*time.Second, sb, containerStatus("c", cCreated, 2*time.Second)),
			[]Event{ev("p", ContainerChanged, "c")}, []string{"c"}, t0.Add(2 * time.Second)},
		{"container started", []*runtimeapi.ContainerStatus{containerStatus("c", cCreated, time.Second)},
			event("c", started, 2*time.Second, sb, containerStatus("c", cRunning, time.Second)),
			[]Event{ev("p", ContainerStarted, "c")}, []string{"c"}, t0.Add(2 * time.Second)},
		{"container stopped", []*runtimeapi.ContainerStatus{containerStatus("c", cRunning, time.Second)},
			event("c", stopped, 2*time.Second, sb, containerStatus("c", cExited, time.Second)),
			[]Event{ev("p", ContainerDied, "c")}, []string{"c"}, t0.Add(2 * time.Second)},
		{"exited container deleted", []*runtimeapi.ContainerStatus{containerStatus("c", cExited, time.Second)},
			event("c", deleted, 2*time.Second, sb),
			[]Event{ev("p", ContainerRemoved, "c")}, []string{}, t0.Add(2 * time.Second)},
		{"running container deleted", []*runtimeapi.ContainerStatus{containerStatus("c", cRunning, time.Second)},
			event("c", deleted, 2*time.Second, sb),
			[]Event{ev("p", ContainerDied, "c"), ev("p", ContainerRemoved, "c")}, []string{}, t0.Add(2 * time.Second)},
		{"sandbox created", nil,
			event("sb", created, 2*time.Second, sandboxStatus("sb", false, 0)),
			[]Event{ev("p", PodSync, "sb")}, []string{}, t0.Add(2 * time.Second)},
		{"sandbox started", nil,
			event("sb", started, 2*time.Second, sb),
			[]Event{ev("p", PodSync, "sb")}, []string{}, t0.Add(2 * time.Second)},
		{"sandbox stopped", []*runtimeapi.ContainerStatus{containerStatus("c", cExited, time.Second)},
			event("sb", stopped, 2*time.Second, sandboxStatus("sb", false, 0), containerStatus("c", cExited, time.Second)),
			[]Event{ev("p", PodSync, "sb")}, []string{"c"}, t0.Add(2 * time.Second)},
		{"last sandbox deleted", []*runtimeapi.ContainerStatus{},
			event("sb", deleted, 2*time.Second, nil),
			[]Event{ev("p", PodSync, "sb")}, nil, time.Time{}},
		{"older than the cache", []*runtimeapi.ContainerStatus{containerStatus("c", cRunning, time.Second)},
			event("c", stopped, 500*time.Millisecond, sb, containerStatus("c", cExited, time.Second)),
			nil, []string{"c"}, t0.Add(time.Second)},
		{"not the agent's pod", nil,
			event("x", started, 2*time.Second, &runtimeapi.PodSandboxStatus{Id: "foreign"}),
			nil, nil, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRuntime()
			o, _ := testOptions(f)
			e := newEvented(o.withDefaults())
			if tt.cached != nil {
				st := &PodStatus{ID: "p", Name: "name-p", Namespace: "ns", TimeStamp: t0.Add(time.Second),
					SandboxStatuses: []*runtimeapi.PodSandboxStatus{sb}, ContainerStatuses: tt.cached}
				o.Cache.Set("p", st, nil, st.TimeStamp)
				e.setOwner("sb", "p") // as a relist or an earlier event would have
				for _, c := range tt.cached {
					e.setOwner(c.Id, "p")
				}
			}
			e.handle(tt.event)
			if got := drain(e.Watch()); !slices.Equal(got, tt.want) {
				t.Fatalf("events %s, want %s", fmtEvents(got), fmtEvents(tt.want))
			}
			if calls := f.GetCalls(); len(calls) != 0 {
				t.Fatalf("CRI calls %v; an event must be handled from its own content", calls)
			}
			st, _ := o.Cache.Get("p")
			if tt.wantContainers == nil {
				if len(st.SandboxStatuses) != 0 {
					t.Fatalf("pod cached: %+v", st)
				}
				return
			}
			if got := ids(st.ContainerStatuses); !slices.Equal(got, tt.wantContainers) && len(got)+len(tt.wantContainers) > 0 {
				t.Fatalf("cached containers %v, want %v", got, tt.wantContainers)
			}
			if !st.TimeStamp.Equal(tt.wantTime) || st.Name != "name-p" {
				t.Fatalf("cached status at %v named %q, want %v, name-p", st.TimeStamp, st.Name, tt.wantTime)
			}
		})
	}
}

func TestEventIPs(t *testing.T) {
	f := newFakeRuntime()
	o, _ := testOptions(f)
	e := newEvented(o.withDefaults())
	e.handle(event("sb", runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, time.Second, sandboxStatus("sb", true, 0)))
	if st, _ := o.Cache.Get("p"); !slices.Equal(st.IPs, []string{"10.0.0.9"}) {
		t.Fatalf("IPs %v from the ready sandbox", st.IPs)
	}
	e.handle(event("sb", runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, 2*time.Second, sandboxStatus("sb", false, 0)))
	if st, _ := o.Cache.Get("p"); !slices.Equal(st.IPs, []string{"10.0.0.9"}) {
		t.Fatalf("IPs %v after the sandbox stopped, want the last ones kept", st.IPs)
	}
}

// An event describes one sandbox; the pod's other sandboxes and their
// containers stay as cached.
func TestMergeEvent(t *testing.T) {
	sb1, sb2 := sandboxStatus("sb1", false, 0), sandboxStatus("sb2", true, 10*time.Second)
	a1 := containerStatus("a1", cExited, time.Second)
	a2 := containerStatus("a2", cRunning, 11*time.Second)
	b2 := containerStatus("b2", cCreated, 12*time.Second)
	cached := &PodStatus{ID: "p", Name: "name-p", Namespace: "ns",
		SandboxStatuses:   []*runtimeapi.PodSandboxStatus{sb2, sb1},
		ContainerStatuses: []*runtimeapi.ContainerStatus{b2, a2, a1}}
	a2x := containerStatus("a2", cExited, 11*time.Second)
	tests := []struct {
		name             string
		sb               *runtimeapi.PodSandboxStatus
		cs               []*runtimeapi.ContainerStatus
		sandboxes, ctrs  []string
		wantA2State, ips string
		wantA2Replaced   bool
	}{
		{"newest sandbox, b2 deleted, a2 exited", sb2, []*runtimeapi.ContainerStatus{a2x},
			[]string{"sb2", "sb1"}, []string{"a2", "a1"}, "", "10.0.0.9", true},
		{"old sandbox, its container deleted", sb1, nil,
			[]string{"sb2", "sb1"}, []string{"b2", "a2"}, "", "10.0.0.9", false},
		{"a new sandbox", sandboxStatus("sb3", true, 20*time.Second), nil,
			[]string{"sb3", "sb2", "sb1"}, []string{"b2", "a2", "a1"}, "", "10.0.0.9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := mergeEvent(cached, tt.sb, tt.cs)
			if got := ids(st.SandboxStatuses); !slices.Equal(got, tt.sandboxes) {
				t.Errorf("sandboxes %v, want %v", got, tt.sandboxes)
			}
			if got := ids(st.ContainerStatuses); !slices.Equal(got, tt.ctrs) {
				t.Errorf("containers %v, want %v", got, tt.ctrs)
			}
			if c := findContainer(st, "a2"); c != nil && (c == a2x) != tt.wantA2Replaced {
				t.Errorf("a2 from the event: %v, want %v", c == a2x, tt.wantA2Replaced)
			}
			if st.Name != "name-p" || !slices.Equal(st.IPs, []string{tt.ips}) {
				t.Errorf("name %q IPs %v", st.Name, st.IPs)
			}
		})
	}
	rest := withoutSandbox(cached, "sb1")
	if got := ids(rest.ContainerStatuses); !slices.Equal(got, []string{"b2", "a2"}) || !slices.Equal(ids(rest.SandboxStatuses), []string{"sb2"}) {
		t.Fatalf("without sb1: %v %v", ids(rest.SandboxStatuses), got)
	}
}

// startEvented starts an evented PLEG over f and waits until its stream is up and
// both its first relist and the one the connection asks for are done, so the
// clock can be stepped.
func startEvented(t *testing.T, f *fakeRuntime, o Options) (*evented, *clocktesting.FakeClock) {
	t.Helper()
	clk := o.Clock.(*clocktesting.FakeClock)
	if o.Metrics == nil {
		o.Metrics = &recMetrics{}
	}
	m := o.Metrics.(*recMetrics)
	e := New(o).(*evented)
	e.Start()
	t.Cleanup(e.Stop)
	select {
	case <-f.connected:
	case <-time.After(5 * time.Second):
		t.Fatal("no stream established")
	}
	waitFor(t, "two relists", 5*time.Second, nil, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.durations) >= 2
	})
	waitQuiet(t, e, clk)
	return e, clk
}

// waitQuiet waits until no relist is asked for and the loop waits on its timer.
func waitQuiet(t *testing.T, e *evented, clk *clocktesting.FakeClock) {
	t.Helper()
	waitFor(t, "the relist loop to be idle", 5*time.Second, nil, func() bool {
		return len(e.kick) == 0 && clk.HasWaiters()
	})
}

func TestEventedDeliversEvents(t *testing.T) {
	f := newFakeRuntime()
	o, _ := testOptions(f)
	m := &recMetrics{}
	o.Metrics = m
	e, _ := startEvented(t, f, o)
	if !IsEvented(e) {
		t.Fatal("not evented")
	}
	sb := sandboxStatus("sb", true, 0)
	f.eventsIn <- event("c", runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, time.Second, sb, containerStatus("c", cExited, time.Second))
	if got := next(t, e.Watch(), 5*time.Second); got != ev("p", ContainerDied, "c") {
		t.Fatalf("got %+v", got)
	}
	if s := containerState1(t, o.Cache, "p", "c"); s != cExited {
		t.Fatalf("cached state %v", s)
	}
	if ok, _ := m.streams(); ok != 1 {
		t.Fatalf("%d stream connections counted, want 1", ok)
	}
}

// While the stream is up, relists are rare (the safety net) and the cache is
// marked current every RelistPeriod.
func TestEventedSafetyRelist(t *testing.T) {
	f := newFakeRuntime()
	o, _ := testOptions(f)
	o.EventedRelistPeriod = 30 * time.Second
	f.set(simplePod("p", cRunning))
	e, clk := startEvented(t, f, o)
	start := clk.Now()
	got := drain(e.Watch())
	if want := []Event{ev("p", ContainerStarted, "p-c"), ev("p", PodSync, "p-sb")}; !slices.Equal(got, want) {
		t.Fatalf("initial relist: %s, want %s", fmtEvents(got), fmtEvents(want))
	}
	f.set(simplePod("p", cExited)) // no event: only a relist can see it
	clk.Step(time.Second)
	select {
	case <-getNewerThan(o.Cache, "p", start.Add(500*time.Millisecond)):
	case <-time.After(5 * time.Second):
		t.Fatal("the cache time is not refreshed while the stream is up")
	}
	for {
		waitQuiet(t, e, clk)
		if evs := drain(e.Watch()); len(evs) > 0 {
			if evs[0] != ev("p", ContainerDied, "p-c") {
				t.Fatalf("got %s", fmtEvents(evs))
			}
			if d := clk.Since(start); d < 30*time.Second {
				t.Fatalf("relisted after %v, want the evented relist period (30s)", d)
			}
			break
		}
		if clk.Since(start) > time.Minute {
			t.Fatal("no safety relist within a minute")
		}
		clk.Step(time.Second)
	}
}

// A broken stream makes the PLEG relist at once (events may be lost) and reconnect.
func TestEventedStreamFailureRelists(t *testing.T) {
	f := newFakeRuntime()
	o, _ := testOptions(f)
	f.set(simplePod("p", cRunning))
	e, clk := startEvented(t, f, o)
	drain(e.Watch())
	f.set(simplePod("p", cExited))
	f.breakStream <- status.Error(codes.Unavailable, "runtime restarted")
	if got := next(t, e.Watch(), 5*time.Second); got != ev("p", ContainerDied, "p-c") {
		t.Fatalf("got %+v", got)
	}
	// It reconnects after the back-off and stays evented.
	waitFor(t, "a reconnection", 5*time.Second, func() {
		if clk.HasWaiters() {
			clk.Step(100 * time.Millisecond)
		}
	}, func() bool { return len(f.connected) > 0 })
	if !IsEvented(e) {
		t.Fatal("one failure made it fall back")
	}
}

func TestEventedFallbackAfterRepeatedFailures(t *testing.T) {
	f := newFakeRuntime()
	f.setFailStreams(-1)
	o, clk := testOptions(f)
	o.FallbackAfter = 3
	m := &recMetrics{}
	o.Metrics = m
	e := New(o).(*evented)
	e.Start()
	defer e.Stop()
	waitFor(t, "the fallback", 10*time.Second, func() {
		if clk.HasWaiters() {
			clk.Step(100 * time.Millisecond)
		}
	}, func() bool { return e.inFallback() })
	if n := f.attempts.Load(); n != 3 {
		t.Fatalf("fell back after %d attempts, want 3", n)
	}
	if _, failed := m.streams(); failed != 3 {
		t.Fatalf("%d stream errors counted, want 3", failed)
	}
	// Now it relists every RelistPeriod, not every EventedRelistPeriod.
	drain(e.Watch())
	f.set(simplePod("p", cRunning))
	start := clk.Now()
	var got *Event
	waitFor(t, "a relist", 5*time.Second, func() {
		if clk.HasWaiters() {
			clk.Step(time.Second)
		}
	}, func() bool {
		select {
		case got = <-e.Watch():
			return true
		default:
			return false
		}
	})
	if got.ID != "p" || clk.Since(start) > 10*time.Second {
		t.Fatalf("got %+v after %v", *got, clk.Since(start))
	}
	// And its health threshold is the generic one.
	if th := time.Duration(e.threshold.Load()); th != DefaultRelistThreshold {
		t.Fatalf("health threshold %v after the fallback, want %v", th, DefaultRelistThreshold)
	}
}

// Until the stream is established, the PLEG relists every RelistPeriod.
func TestEventedRelistsWhileStreamIsDown(t *testing.T) {
	f := newFakeRuntime()
	f.hangStreams = true
	o, clk := testOptions(f)
	e := New(o).(*evented)
	e.Start()
	defer e.Stop()
	waitFor(t, "the first relist", 5*time.Second, nil, func() bool { return e.lastRelist.Load() != nil })
	waitQuiet(t, e, clk)
	f.set(simplePod("p", cRunning))
	clk.Step(time.Second)
	if got := next(t, e.Watch(), 5*time.Second); got.ID != "p" {
		t.Fatalf("got %+v", got)
	}
	if e.inFallback() {
		t.Fatal("a slow stream made it fall back")
	}
	if IsEvented(e) {
		t.Fatal("IsEvented before any stream was established")
	}
}

// IsEvented is true only while a stream is open: not before Start, not while the
// first stream is being opened, not between a stream's failure and the
// reconnection.
func TestIsEventedOnlyWithOpenStream(t *testing.T) {
	f := newFakeRuntime()
	o, _ := testOptions(f)
	e := New(o).(*evented)
	if IsEvented(e) {
		t.Fatal("IsEvented before Start")
	}
	e, clk := startEvented(t, f, o)
	if !IsEvented(e) {
		t.Fatal("not evented with the stream open")
	}
	f.breakStream <- status.Error(codes.Unavailable, "runtime restarted")
	waitFor(t, "the stream's end to be noticed", 5*time.Second, nil, func() bool { return !IsEvented(e) })
	waitFor(t, "a reconnection", 5*time.Second, func() {
		if clk.HasWaiters() {
			clk.Step(100 * time.Millisecond)
		}
	}, func() bool { return len(f.connected) > 0 })
	<-f.connected
	if !IsEvented(e) {
		t.Fatal("not evented after the reconnection")
	}
}

func TestEventedReconnectsAfterFallback(t *testing.T) {
	f := newFakeRuntime()
	f.setFailStreams(2)
	o, clk := testOptions(f)
	o.FallbackAfter = 2
	e := New(o).(*evented)
	e.Start()
	defer e.Stop()
	step := func() {
		if clk.HasWaiters() {
			clk.Step(time.Second)
		}
	}
	waitFor(t, "the fallback", 10*time.Second, step, func() bool { return e.inFallback() })
	fellBack := clk.Now()
	waitFor(t, "the stream re-established", 10*time.Second, step, func() bool { return IsEvented(e) })
	if d := clk.Since(fellBack); d < streamRetryFallback-5*time.Second {
		t.Fatalf("retried %v after the fallback, want about %v", d, streamRetryFallback)
	}
	if n := f.attempts.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
}

func TestEventedUnimplementedFallsBackForGood(t *testing.T) {
	f := newFakeRuntime()
	f.unimplemented = true
	o, clk := testOptions(f)
	e := New(o).(*evented)
	e.Start()
	defer e.Stop()
	waitFor(t, "the fallback", 5*time.Second, nil, func() bool { return e.inFallback() })
	for range 120 {
		waitFor(t, "a timer", 5*time.Second, nil, clk.HasWaiters)
		clk.Step(time.Second)
	}
	if n := f.attempts.Load(); n != 1 {
		t.Fatalf("%d attempts at a stream the runtime does not implement, want 1", n)
	}
}

func TestNewPicksImplementation(t *testing.T) {
	f := newFakeRuntime()
	o, _ := testOptions(f)
	if _, ok := New(o).(*evented); !ok {
		t.Error("New: not evented by default")
	}
	o.DisableEvented = true
	if _, ok := New(o).(*evented); ok {
		t.Error("New with DisableEvented: evented")
	}
	if _, ok := NewGeneric(Options{Runtime: f}).(*evented); ok {
		t.Error("NewGeneric: evented")
	}
}

func TestEventedHealthyThreshold(t *testing.T) {
	f := newFakeRuntime()
	o, clk := testOptions(f)
	e := newEvented(o.withDefaults())
	mustRelist(t, e.relister)
	clk.Step(DefaultEventedRelistPeriod + DefaultRelistThreshold)
	if ok, err := e.Healthy(); !ok {
		t.Fatalf("unhealthy within the evented relist period plus the threshold: %v", err)
	}
	clk.Step(time.Second)
	if ok, _ := e.Healthy(); ok {
		t.Fatal("healthy past the evented relist period plus the threshold")
	}
}

// An event for a sandbox the PLEG cannot place (gone, no labels) asks for a relist.
func TestEventForUnknownObjectRelists(t *testing.T) {
	f := newFakeRuntime()
	o, _ := testOptions(f)
	e := newEvented(o.withDefaults())
	e.handle(&runtimeapi.ContainerEventResponse{ContainerId: "x", ContainerEventType: runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, CreatedAt: t0.UnixNano()})
	if len(e.kick) != 1 {
		t.Fatal("no relist asked for")
	}
	// A known one is placed from what was seen before.
	e.setOwner("sb", types.UID("p"))
	o.Cache.Set("p", &PodStatus{ID: "p", SandboxStatuses: []*runtimeapi.PodSandboxStatus{sandboxStatus("sb", false, 0)}}, nil, t0)
	e.handle(event("sb", runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, time.Second, nil))
	if got := drain(e.Watch()); !slices.Equal(got, []Event{ev("p", PodSync, "sb")}) {
		t.Fatalf("got %s", fmtEvents(got))
	}
}
