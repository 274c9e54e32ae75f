package timeline

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func pod(ns, name, uid string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
}

func newTest(o Options) (*Recorder, *clocktesting.FakeClock) {
	c := clocktesting.NewFakeClock(t0)
	o.Clock = c
	return New(o), c
}

func whats(tl *Timeline) []string {
	var out []string
	for _, e := range tl.Entries {
		out = append(out, e.What)
	}
	return out
}

func get(t *testing.T, r *Recorder, uid types.UID) *Timeline {
	t.Helper()
	tl, ok := r.Get(uid)
	if !ok {
		t.Fatalf("no timeline for %s", uid)
	}
	return tl
}

func TestRingKeepsTheNewestInOrder(t *testing.T) {
	r, c := newTest(Options{Entries: 5})
	r.Add(pod("default", "web", "u1"))
	for i := range 8 {
		r.Record("u1", Entry{Kind: Sync, What: fmt.Sprint("e", i)})
		c.Step(time.Second)
	}
	tl := get(t, r, "u1")
	if got, want := whats(tl), []string{"e3", "e4", "e5", "e6", "e7"}; !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v (oldest first)", got, want)
	}
	if tl.Dropped != 3 {
		t.Errorf("Dropped %d, want 3", tl.Dropped)
	}
	for i, e := range tl.Entries {
		if want := t0.Add(time.Duration(3+i) * time.Second); !e.Time.Equal(want) {
			t.Errorf("entry %d at %v, want the clock's %v", i, e.Time, want)
		}
	}
	if tl.Namespace != "default" || tl.Name != "web" || tl.UID != "u1" || tl.Gone != nil {
		t.Errorf("timeline of %s/%s %s gone %v", tl.Namespace, tl.Name, tl.UID, tl.Gone)
	}
}

func TestRingByteBudget(t *testing.T) {
	r, _ := newTest(Options{Entries: 100, PodBytes: 1000, MaxMessage: 400})
	r.Add(pod("default", "web", "u1"))
	for i := range 10 {
		r.Record("u1", Entry{Kind: Probe, What: fmt.Sprint(i), Message: strings.Repeat("x", 300)})
	}
	tl := get(t, r, "u1")
	// Each entry holds 5+1+300 bytes: three fit in 1000.
	if got, want := whats(tl), []string{"7", "8", "9"}; !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if tl.Dropped != 7 {
		t.Errorf("Dropped %d, want 7", tl.Dropped)
	}
	// Small entries fill it again up to the budget, pushing the big ones out.
	for range 200 {
		r.Record("u1", Entry{Kind: CRI, What: "RunPodSandbox"})
	}
	tl = get(t, r, "u1")
	if n := len(tl.Entries); n != 1000/16 {
		t.Errorf("%d entries, want the %d of 16 bytes that 1000 bytes hold", n, 1000/16)
	}
	if tl.Entries[0].What != "RunPodSandbox" {
		t.Errorf("oldest %q: the big entries should have gone", tl.Entries[0].What)
	}
}

func TestCaps(t *testing.T) {
	r, _ := newTest(Options{MaxMessage: 64})
	r.Add(pod("default", "web", "u1"))
	long := strings.Repeat("é", 100) // 200 bytes, 2 per rune
	r.Record("u1", Entry{Kind: Probe, What: "liveness probe failed", Message: long, Error: "short"})
	e := get(t, r, "u1").Entries[0]
	if len(e.Message) > 64 || !strings.HasSuffix(e.Message, "[truncated]") || !utf8.ValidString(e.Message) {
		t.Errorf("message %q (%d bytes): want at most 64 bytes, valid UTF-8, marked truncated", e.Message, len(e.Message))
	}
	if !strings.HasPrefix(e.Message, "éé") {
		t.Errorf("message %q lost its beginning", e.Message)
	}
	if e.Error != "short" {
		t.Errorf("error %q, want it as it was", e.Error)
	}
}

func TestRecordsOnlyAddedPods(t *testing.T) {
	r, _ := newTest(Options{})
	r.Record("nobody", Entry{Kind: PLEG, What: "ContainerDied"})
	if _, ok := r.Get("nobody"); ok {
		t.Error("a pod never added has a timeline")
	}
	var nilRec *Recorder
	nilRec.Add(pod("a", "b", "c"))
	nilRec.Record("c", Entry{What: "x"})
	if _, ok := nilRec.PodTimeline("a", "b"); ok {
		t.Error("a nil recorder found something")
	}
}

func TestDurations(t *testing.T) {
	r, _ := newTest(Options{})
	r.Add(pod("default", "web", "u1"))
	at := t0.Add(-time.Minute)
	r.Record("u1", Entry{Time: at, Kind: CRI, What: "StopContainer", Took: 1500 * time.Millisecond})
	r.Record("u1", Entry{Kind: Hook, What: "postStart hook", Duration: "250ms"})
	tl := get(t, r, "u1")
	if e := tl.Entries[0]; e.Duration != "1.5s" || e.Took != 1500*time.Millisecond || !e.Time.Equal(at) {
		t.Errorf("entry %+v: want duration 1.5s at the given time", e)
	}
	if e := tl.Entries[1]; e.Took != 250*time.Millisecond || e.Duration != "250ms" || !e.Time.Equal(t0) {
		t.Errorf("entry %+v: want Took parsed from Duration, stamped now", e)
	}
}

func TestRetention(t *testing.T) {
	r, c := newTest(Options{Retention: time.Hour, MaxGone: 2})
	r.Add(pod("default", "web", "u1"))
	r.Record("u1", Entry{Kind: Source, What: "added"})
	r.Forget("u1")
	r.Record("u1", Entry{Kind: CRI, What: "RemovePodSandbox"}) // cleanup after Forget
	c.Step(59 * time.Minute)
	tl, ok := r.PodTimeline("default", "web")
	if !ok || tl.Gone == nil || !tl.Gone.Equal(t0) {
		t.Fatalf("gone pod within its retention: %v %+v, want it with Gone at %v", ok, tl, t0)
	}
	if got := whats(tl); !slices.Equal(got, []string{"added", "RemovePodSandbox"}) {
		t.Errorf("entries %v", got)
	}
	c.Step(2 * time.Minute)
	if _, ok := r.Get("u1"); ok {
		t.Fatal("timeline kept past its retention")
	}

	// At most MaxGone gone pods: the oldest go first; live pods stay.
	r.Add(pod("default", "live", "live"))
	for i := range 4 {
		uid := types.UID(fmt.Sprint("g", i))
		r.Add(pod("default", string(uid), string(uid)))
		r.Forget(uid)
		c.Step(time.Second)
	}
	for uid, want := range map[types.UID]bool{"g0": false, "g1": false, "g2": true, "g3": true, "live": true} {
		if _, ok := r.Get(uid); ok != want {
			t.Errorf("%s kept %t, want %t", uid, ok, want)
		}
	}
}

func TestAddAgainAfterForget(t *testing.T) {
	r, c := newTest(Options{})
	p := pod("default", "web", "u1")
	r.Add(p)
	r.Record("u1", Entry{What: "first"})
	r.Forget("u1")
	c.Step(time.Minute)
	r.Add(p)
	r.Record("u1", Entry{What: "second"})
	tl := get(t, r, "u1")
	if tl.Gone != nil || !slices.Equal(whats(tl), []string{"first", "second"}) {
		t.Errorf("pod added again: gone %v entries %v, want one timeline going on", tl.Gone, whats(tl))
	}
	// Forgotten again much later, it goes with its own retention.
	r.Forget("u1")
	c.Step(DefaultRetention + time.Second)
	if _, ok := r.Get("u1"); ok {
		t.Error("kept past its retention")
	}
}

func TestPodTimelineNewestInstance(t *testing.T) {
	r, c := newTest(Options{})
	r.Add(pod("default", "web", "old"))
	r.Record("old", Entry{What: "old instance"})
	c.Step(time.Second)
	r.Add(pod("default", "web", "new"))
	r.Record("new", Entry{What: "new instance"})
	r.Add(pod("other", "web", "elsewhere"))
	tl, ok := r.PodTimeline("default", "web")
	if !ok || tl.UID != "new" {
		t.Fatalf("PodTimeline: %v %+v, want the instance added last", ok, tl)
	}
	// The old one stays reachable by UID.
	if tl := get(t, r, "old"); tl.Entries[0].What != "old instance" {
		t.Errorf("old instance %v", whats(tl))
	}
	if _, ok := r.PodTimeline("default", "nope"); ok {
		t.Error("found a pod that does not exist")
	}
}

func TestContextCarriesThePod(t *testing.T) {
	r, _ := newTest(Options{})
	r.Add(pod("default", "web", "u1"))
	ctx := context.Background()
	if got := WithPod(ctx, r, "unknown"); got != ctx {
		t.Error("WithPod of an unknown pod changed ctx")
	}
	if got := WithContainer(ctx, "app"); got != ctx {
		t.Error("WithContainer without a pod changed ctx")
	}
	FromContext(ctx).Record(Entry{What: "nowhere"}) // the zero Log: nothing

	pctx := WithPod(ctx, r, "u1")
	if again := WithPod(pctx, r, "u1"); again != pctx {
		t.Error("WithPod of the same pod wrapped ctx again")
	}
	FromContext(pctx).Record(Entry{Kind: CRI, What: "RunPodSandbox"})
	cctx := WithContainer(pctx, "app")
	FromContext(cctx).Record(Entry{Kind: CRI, What: "StartContainer"})
	FromContext(cctx).Record(Entry{Kind: CRI, What: "StopContainer", Container: "other"})
	if uid := FromContext(cctx).UID(); uid != "u1" {
		t.Errorf("UID %q", uid)
	}
	tl := get(t, r, "u1")
	var got []string
	for _, e := range tl.Entries {
		got = append(got, e.What+"/"+e.Container)
	}
	if want := []string{"RunPodSandbox/", "StartContainer/app", "StopContainer/other"}; !slices.Equal(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
}

// TestJSON pins the names the CLI reads.
func TestJSON(t *testing.T) {
	r, c := newTest(Options{})
	r.Add(pod("default", "web", "u1"))
	r.Record("u1", Entry{Kind: Sync, Container: "app", What: "kill container", Reason: "Killing",
		Message: "Container app failed liveness probe, will be restarted", Took: time.Second, Error: "boom", Event: Normal})
	r.Forget("u1")
	c.Step(time.Second)
	tl := get(t, r, "u1")
	data, err := json.Marshal(tl)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"namespace":"default","name":"web","uid":"u1","entries":[{"time":"2026-03-01T12:00:00Z","kind":"Sync",` +
		`"container":"app","what":"kill container","reason":"Killing","message":"Container app failed liveness probe, will be restarted",` +
		`"duration":"1s","error":"boom","event":"Normal"}],"gone":"2026-03-01T12:00:00Z"}`
	if string(data) != want {
		t.Errorf("JSON\n  %s\nwant\n  %s", data, want)
	}
	r.Add(pod("default", "empty", "u2"))
	data, _ = json.Marshal(get(t, r, "u2"))
	if !strings.Contains(string(data), `"entries":[]`) {
		t.Errorf("empty timeline %s: want entries as [] for clients", data)
	}
}

// TestConcurrentUse records into many pods from many goroutines while pods
// come and go and timelines are read (run with -race).
func TestConcurrentUse(t *testing.T) {
	r, c := newTest(Options{Entries: 50, MaxGone: 5})
	const pods, writers, each = 20, 8, 500
	for i := range pods {
		r.Add(pod("default", fmt.Sprint("p", i), fmt.Sprint("u", i)))
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				uid := types.UID(fmt.Sprint("u", (w+i)%pods))
				ctx := WithContainer(WithPod(context.Background(), r, uid), "app")
				FromContext(ctx).Record(Entry{Kind: CRI, What: "StartContainer", Took: time.Millisecond})
				r.Record(uid, Entry{Kind: PLEG, What: "ContainerStarted"})
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range each {
			uid := types.UID(fmt.Sprint("u", i%pods))
			r.Forget(uid)
			c.Step(time.Millisecond)
			r.Add(pod("default", fmt.Sprint("p", i%pods), string(uid)))
		}
	}()
	go func() {
		defer wg.Done()
		for i := range each {
			if tl, ok := r.PodTimeline("default", fmt.Sprint("p", i%pods)); ok && len(tl.Entries) > 50 {
				t.Errorf("%d entries in a ring of 50", len(tl.Entries))
			}
		}
	}()
	wg.Wait()
	total := 0
	for i := range pods {
		tl := get(t, r, types.UID(fmt.Sprint("u", i)))
		total += len(tl.Entries) + tl.Dropped
	}
	if want := 2 * writers * each; total != want {
		t.Errorf("entries kept + dropped = %d, want every one recorded: %d", total, want)
	}
}

func BenchmarkRecord(b *testing.B) {
	r := New(Options{})
	r.Add(pod("default", "web", "u1"))
	l := r.Pod("u1")
	b.ReportAllocs()
	for b.Loop() {
		l.Record(Entry{Kind: CRI, What: "StartContainer", Container: "app", Took: time.Millisecond})
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	r := New(Options{})
	for i := range 64 {
		r.Add(pod("default", fmt.Sprint("p", i), fmt.Sprint("u", i)))
	}
	b.ReportAllocs()
	var n sync.Mutex
	next := 0
	b.RunParallel(func(pb *testing.PB) {
		n.Lock()
		uid := types.UID(fmt.Sprint("u", next%64))
		next++
		n.Unlock()
		for pb.Next() {
			r.Record(uid, Entry{Kind: PLEG, What: "ContainerDied", Container: "app"})
		}
	})
}
