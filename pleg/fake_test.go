package pleg

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	kubetypes "k8s.io/kubelet/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeRuntime is the CRI fake runtime with what the PLEG tests need on top:
// NotFound codes for missing objects, status calls that block or fail for chosen
// ids, and a scriptable container event stream.
type fakeRuntime struct {
	*critest.FakeRuntimeService

	mu      sync.Mutex
	block   map[string]chan struct{} // ContainerStatus of id waits for the channel (or ctx)
	gone    map[string]bool          // status of id says NotFound (removed after listing)
	hook    func(id string)          // called on each ContainerStatus
	statusN atomic.Int64             // ContainerStatus and PodSandboxStatus calls

	// Stream script: unimplemented answers Unimplemented; failStreams > 0 makes
	// that many attempts fail at once (-1: all); otherwise a stream is
	// established and relays eventsIn until breakStream or ctx.
	unimplemented bool
	hangStreams   bool // attempts block until ctx ends, never established
	failStreams   int
	attempts      atomic.Int64
	eventsIn      chan *runtimeapi.ContainerEventResponse
	breakStream   chan error
	connected     chan struct{} // one value per established stream
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{
		FakeRuntimeService: critest.NewFakeRuntimeService(),
		block:              map[string]chan struct{}{},
		gone:               map[string]bool{},
		eventsIn:           make(chan *runtimeapi.ContainerEventResponse),
		breakStream:        make(chan error),
		connected:          make(chan struct{}, 100),
	}
}

func (f *fakeRuntime) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	f.statusN.Add(1)
	f.mu.Lock()
	block, gone, hook := f.block[id], f.gone[id], f.hook
	f.mu.Unlock()
	if hook != nil {
		hook(id)
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if gone {
		return nil, status.Errorf(codes.NotFound, "container %s not found", id)
	}
	resp, err := f.FakeRuntimeService.ContainerStatus(ctx, id, verbose)
	if err != nil && !f.hasContainer(id) {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	return resp, err
}

func (f *fakeRuntime) PodSandboxStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	f.statusN.Add(1)
	f.mu.Lock()
	gone := f.gone[id]
	f.mu.Unlock()
	if gone {
		return nil, status.Errorf(codes.NotFound, "sandbox %s not found", id)
	}
	resp, err := f.FakeRuntimeService.PodSandboxStatus(ctx, id, verbose)
	if err != nil && !f.hasSandbox(id) {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	return resp, err
}

func (f *fakeRuntime) hasSandbox(id string) bool {
	f.FakeRuntimeService.Lock()
	defer f.FakeRuntimeService.Unlock()
	_, ok := f.Sandboxes[id]
	return ok
}

func (f *fakeRuntime) GetContainerEvents(ctx context.Context, ch chan *runtimeapi.ContainerEventResponse, established func(runtimeapi.RuntimeService_GetContainerEventsClient)) error {
	f.attempts.Add(1)
	f.mu.Lock()
	unimplemented, fail, hang := f.unimplemented, f.failStreams, f.hangStreams
	if f.failStreams > 0 {
		f.failStreams--
	}
	f.mu.Unlock()
	if unimplemented {
		return status.Error(codes.Unimplemented, "unknown method GetContainerEvents")
	}
	if fail != 0 {
		return status.Error(codes.Unavailable, "connection refused")
	}
	if hang {
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	if established != nil {
		established(nil)
	}
	f.connected <- struct{}{}
	for {
		select {
		case ev := <-f.eventsIn:
			ch <- ev
		case err := <-f.breakStream:
			return err
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (f *fakeRuntime) setFailStreams(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failStreams = n
}

func (f *fakeRuntime) hasContainer(id string) bool {
	f.FakeRuntimeService.Lock()
	defer f.FakeRuntimeService.Unlock()
	_, ok := f.Containers[id]
	return ok
}

// blockStatus makes ContainerStatus of id wait until the returned func is called.
func (f *fakeRuntime) blockStatus(id string) (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.block[id] = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.block, id)
			f.mu.Unlock()
			close(ch)
		})
	}
}

// pod is a test pod: a sandbox and containers, in the fake runtime.
type testPod struct {
	uid       string
	sandboxes []*critest.FakePodSandbox
	ctrs      []*critest.FakeContainer
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func podLabels(uid string) map[string]string {
	return map[string]string{
		kubetypes.KubernetesPodUIDLabel:       uid,
		kubetypes.KubernetesPodNameLabel:      "name-" + uid,
		kubetypes.KubernetesPodNamespaceLabel: "ns",
	}
}

func newSandbox(uid, id string, ready bool, created time.Duration, ip string) *critest.FakePodSandbox {
	st := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	if ready {
		st = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	sb := &critest.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
		Id:        id,
		Metadata:  &runtimeapi.PodSandboxMetadata{Name: "name-" + uid, Namespace: "ns", Uid: uid},
		State:     st,
		CreatedAt: t0.Add(created).UnixNano(),
		Labels:    podLabels(uid),
	}}
	if ip != "" {
		sb.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: ip}
	}
	return sb
}

func newContainer(uid, sandboxID, id, name string, state runtimeapi.ContainerState, created time.Duration) *critest.FakeContainer {
	labels := podLabels(uid)
	labels[kubetypes.KubernetesContainerNameLabel] = name
	return &critest.FakeContainer{
		SandboxID: sandboxID,
		ContainerStatus: runtimeapi.ContainerStatus{
			Id:        id,
			Metadata:  &runtimeapi.ContainerMetadata{Name: name},
			State:     state,
			CreatedAt: t0.Add(created).UnixNano(),
			Labels:    labels,
		},
	}
}

// set replaces the fake runtime's objects with those of pods.
func (f *fakeRuntime) set(pods ...*testPod) {
	var sbs []*critest.FakePodSandbox
	var cs []*critest.FakeContainer
	for _, p := range pods {
		sbs = append(sbs, p.sandboxes...)
		cs = append(cs, p.ctrs...)
	}
	f.SetFakeSandboxes(sbs)
	f.SetFakeContainers(cs)
}

// simplePod is a pod with one ready sandbox "<uid>-sb" and one container
// "<uid>-c" in state st (none when st < 0).
func simplePod(uid string, st runtimeapi.ContainerState) *testPod {
	p := &testPod{uid: uid, sandboxes: []*critest.FakePodSandbox{newSandbox(uid, uid+"-sb", true, 0, "10.0.0.1")}}
	if st >= 0 {
		p.ctrs = append(p.ctrs, newContainer(uid, uid+"-sb", uid+"-c", "app", st, time.Second))
	}
	return p
}

// mustRelist relists once, failing the test if listing the runtime failed.
func mustRelist(t testing.TB, r *relister) {
	t.Helper()
	if err := r.relist(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// recMetrics records what a PLEG measures.
type recMetrics struct {
	mu        sync.Mutex
	durations []time.Duration
	intervals []time.Duration
	lastSeen  time.Time
	events    map[EventType]int
	discarded int
	streamOK  int
	streamErr int
	latencies []time.Duration
}

func (m *recMetrics) ObserveRelistDuration(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.durations = append(m.durations, d)
}

func (m *recMetrics) ObserveRelistInterval(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.intervals = append(m.intervals, d)
}

func (m *recMetrics) SetLastSeen(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastSeen = t
}

func (m *recMetrics) IncEvent(t EventType) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events == nil {
		m.events = map[EventType]int{}
	}
	m.events[t]++
}

func (m *recMetrics) IncDiscardedEvent() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.discarded++
}

func (m *recMetrics) ObserveStream(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.streamOK++
	} else {
		m.streamErr++
	}
}

func (m *recMetrics) ObserveEventLatency(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.latencies = append(m.latencies, d)
}

func (m *recMetrics) streams() (ok, failed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.streamOK, m.streamErr
}

// testOptions are Options over f with a fake clock at t0 and a quiet logger.
func testOptions(f *fakeRuntime) (Options, *clocktesting.FakeClock) {
	clk := clocktesting.NewFakeClock(t0)
	return Options{
		Runtime: f,
		Cache:   NewCache(),
		Clock:   clk,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, clk
}

// drain returns the events waiting on ch.
func drain(ch <-chan *Event) []Event {
	var out []Event
	for {
		select {
		case ev := <-ch:
			out = append(out, *ev)
		default:
			return out
		}
	}
}

// next waits for the next event on ch.
func next(t *testing.T, ch <-chan *Event, within time.Duration) Event {
	t.Helper()
	select {
	case ev := <-ch:
		return *ev
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
		return Event{}
	}
}

// waitFor polls cond until it holds, calling step (if any) between polls.
func waitFor(t *testing.T, what string, within time.Duration, step func(), cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		if step != nil {
			step()
		}
		time.Sleep(time.Millisecond)
	}
}

func ev(uid string, typ EventType, id string) Event {
	return Event{ID: types.UID(uid), Type: typ, Data: id}
}

func fmtEvents(evs []Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("%s/%s/%s ", e.ID, e.Type, e.Data)
	}
	return s
}
