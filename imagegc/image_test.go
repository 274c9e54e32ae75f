package imagegc

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

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	testingclock "k8s.io/utils/clock/testing"
)

var (
	running = runtimeapi.ContainerState_CONTAINER_RUNNING
	exited  = runtimeapi.ContainerState_CONTAINER_EXITED
	created = runtimeapi.ContainerState_CONTAINER_CREATED
	unknown = runtimeapi.ContainerState_CONTAINER_UNKNOWN
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// events collects what a Recorder receives.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) record(reason, message string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, reason+": "+message)
}

func (e *events) reasons() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, l := range e.list {
		reason, _, _ := strings.Cut(l, ":")
		out = append(out, reason)
	}
	return out
}

// fixedFs is an FsStats with fixed answers.
func fixedFs(capacity, available uint64, err error) FsStats {
	return FsStatsFunc(func(context.Context) (uint64, uint64, error) { return capacity, available, err })
}

type imageHarness struct {
	rt     *fakeRuntime
	clock  *testingclock.FakeClock
	events *events
	gc     *ImageGC
}

func newImageHarness(t *testing.T, o Options) *imageHarness {
	t.Helper()
	h := &imageHarness{rt: &fakeRuntime{}, clock: testingclock.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), events: &events{}}
	o.Images, o.Runtime, o.Clock, o.Recorder, o.Logger = h.rt, h.rt, h.clock, h.events.record, quietLogger()
	gc, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.gc = gc
	return h
}

// detect runs one detection at the clock's time.
func (h *imageHarness) detect(t *testing.T) {
	t.Helper()
	h.gc.mu.Lock()
	defer h.gc.mu.Unlock()
	if _, err := h.gc.detect(context.Background(), h.clock.Now()); err != nil {
		t.Fatalf("detect: %v", err)
	}
}

func TestGarbageCollectThresholds(t *testing.T) {
	errStats := errors.New("stats unavailable")
	for _, tc := range []struct {
		name       string
		high, low  int
		fs         FsStats
		images     []*runtimeapi.Image
		containers []*runtimeapi.Container
		wantLeft   []string
		wantErr    string
		wantIs     error
		wantFree   *FreeDiskSpaceError
		wantEvents []string
	}{{
		name: "below the high threshold", high: 90, low: 80,
		fs:       fixedFs(1000, 600, nil), // 40 %
		images:   []*runtimeapi.Image{image("a", 450)},
		wantLeft: []string{"a"},
	}, {
		name: "95% with 90/80 frees down to 80%", high: 90, low: 80,
		fs:       fixedFs(1000, 50, nil), // wants 150
		images:   []*runtimeapi.Image{image("a", 450)},
		wantLeft: nil,
	}, {
		name: "95% and not enough to free", high: 90, low: 80,
		fs:         fixedFs(1000, 50, nil),
		images:     []*runtimeapi.Image{image("a", 50)},
		wantFree:   &FreeDiskSpaceError{Wanted: 150, Freed: 50, UsagePercent: 95, HighThresholdPercent: 90},
		wantEvents: []string{ReasonFreeDiskSpaceFailed},
	}, {
		name: "at the high threshold exactly, stops once enough is freed", high: 90, low: 80,
		fs:       fixedFs(1000, 100, nil), // 90 %: wants 100
		images:   []*runtimeapi.Image{image("a", 60), image("b", 60), image("c", 60)},
		wantLeft: []string{"c"},
	}, {
		name: "just below the high threshold", high: 90, low: 80,
		fs:       fixedFs(1000, 110, nil), // 89 %
		images:   []*runtimeapi.Image{image("a", 60)},
		wantLeft: []string{"a"},
	}, {
		name: "usage rounds up as in the kubelet", high: 90, low: 80,
		fs:       fixedFs(1000, 101, nil), // 89.9 % counts as 90: wants 99
		images:   []*runtimeapi.Image{image("a", 60), image("b", 60)},
		wantLeft: nil,
	}, {
		name: "defaults 85/80", fs: fixedFs(1000, 150, nil), // 85 %: wants 50
		images:   []*runtimeapi.Image{image("a", 40), image("b", 40), image("c", 40)},
		wantLeft: []string{"c"},
	}, {
		name: "pinned images are never removed", high: 90, low: 80,
		fs:         fixedFs(1000, 50, nil),
		images:     []*runtimeapi.Image{pinned(image("p", 500)), image("a", 100)},
		wantLeft:   []string{"p"},
		wantFree:   &FreeDiskSpaceError{Wanted: 150, Freed: 100, UsagePercent: 95, HighThresholdPercent: 90},
		wantEvents: []string{ReasonFreeDiskSpaceFailed},
	}, {
		name: "images of running, exited and created containers are in use", high: 90, low: 80,
		fs:     fixedFs(1000, 50, nil),
		images: []*runtimeapi.Image{image("r", 500), image("e", 500), image("c", 500), image("u", 500), image("a", 200)},
		containers: []*runtimeapi.Container{
			usingImage("c1", image("r", 0), "ref", running),
			usingImage("c2", image("e", 0), "id", exited),
			usingImage("c3", image("c", 0), "tag", created),
			usingImage("c4", image("u", 0), "id", unknown),
		},
		wantLeft: []string{"c", "e", "r", "u"},
	}, {
		name: "capacity 0", high: 90, low: 80,
		fs:         fixedFs(0, 0, nil),
		images:     []*runtimeapi.Image{image("a", 450)},
		wantLeft:   []string{"a"},
		wantErr:    "invalid capacity 0",
		wantEvents: []string{ReasonInvalidDiskCapacity},
	}, {
		name: "available above capacity counts as empty", high: 90, low: 80,
		fs:       fixedFs(1000, 5000, nil),
		images:   []*runtimeapi.Image{image("a", 450)},
		wantLeft: []string{"a"},
	}, {
		name: "filesystem stats failing", high: 90, low: 80,
		fs:       fixedFs(0, 0, errStats),
		images:   []*runtimeapi.Image{image("a", 450)},
		wantLeft: []string{"a"},
		wantErr:  "image filesystem stats: stats unavailable",
		wantIs:   errStats,
	}, {
		name: "huge filesystem does not overflow", high: 90, low: 80,
		fs:       fixedFs(1<<62, 1<<58, nil), // 93.75 % → 94: wants 0.2·2^62 − 2^58
		images:   []*runtimeapi.Image{image("a", 1<<60)},
		wantLeft: nil,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newImageHarness(t, Options{HighThresholdPercent: tc.high, LowThresholdPercent: tc.low, FsStats: tc.fs})
			h.rt.setImages(tc.images...)
			h.rt.setContainers(tc.containers...)
			h.detect(t)
			h.clock.Step(DefaultMinAge)
			err := h.gc.GarbageCollect(context.Background())

			if got := h.rt.imageIDs(); !slices.Equal(got, tc.wantLeft) {
				t.Errorf("images left = %v, want %v", got, tc.wantLeft)
			}
			var fe *FreeDiskSpaceError
			switch {
			case tc.wantFree != nil:
				if !errors.As(err, &fe) || *fe != *tc.wantFree {
					t.Errorf("err = %v, want %+v", err, tc.wantFree)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("err = %v does not wrap %v", err, tc.wantIs)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			}
			if got := h.events.reasons(); !slices.Equal(got, tc.wantEvents) {
				t.Errorf("events = %v, want %v", got, tc.wantEvents)
			}
		})
	}
}

// Least recently used first; images never used before those used; ties go
// to the image detected first.
func TestGarbageCollectLeastRecentlyUsedFirst(t *testing.T) {
	h := newImageHarness(t, Options{HighThresholdPercent: 90, LowThresholdPercent: 80, MinAge: time.Minute, FsStats: fixedFs(1000, 0, nil)})
	a, b, c, d := image("a", 100), image("b", 100), image("c", 100), image("d", 100)
	h.rt.setImages(a, b, c)
	h.rt.setContainers(usingImage("ca", a, "id", exited), usingImage("cb", b, "ref", running))
	h.detect(t) // t0: a and b used, c never

	h.clock.Step(time.Minute)
	h.rt.setImages(a, b, c, d)
	h.rt.setContainers(usingImage("cb", b, "ref", running))
	h.detect(t) // t1: b used again, d detected, never used

	h.clock.Step(10 * time.Minute)
	h.rt.setContainers()
	// 100 % usage wants 200 bytes: c (never used, detected at t0), then d
	// (never used, detected at t1).
	if err := h.gc.GarbageCollect(context.Background()); err != nil {
		t.Fatalf("GarbageCollect: %v", err)
	}
	if got, want := h.rt.Calls("RemoveImage"), []string{"RemoveImage c", "RemoveImage d"}; !slices.Equal(got, want) {
		t.Fatalf("removals = %v, want %v", got, want)
	}

	// Free everything: a (last used t0) goes before b (last used t1).
	freed, err := h.gc.DeleteUnusedImages(context.Background())
	if err != nil || freed != 200 {
		t.Fatalf("DeleteUnusedImages = %d, %v; want 200", freed, err)
	}
	if got, want := h.rt.Calls("RemoveImage")[2:], []string{"RemoveImage a", "RemoveImage b"}; !slices.Equal(got, want) {
		t.Fatalf("removals = %v, want %v", got, want)
	}
}

func TestGarbageCollectMinAge(t *testing.T) {
	h := newImageHarness(t, Options{HighThresholdPercent: 90, LowThresholdPercent: 80, FsStats: fixedFs(1000, 50, nil)})
	h.rt.setImages(image("old", 100))
	h.detect(t)
	h.clock.Step(time.Minute)
	h.rt.setImages(image("old", 100), image("new", 100))

	// old is 1 min old, new is brand new: neither may go (MinAge 2 min).
	var fe *FreeDiskSpaceError
	if err := h.gc.GarbageCollect(context.Background()); !errors.As(err, &fe) || fe.Freed != 0 {
		t.Fatalf("GarbageCollect = %v, want a FreeDiskSpaceError with nothing freed", err)
	}
	h.clock.Step(time.Minute)
	// old is 2 min old now; new, 1 min.
	if err := h.gc.GarbageCollect(context.Background()); !errors.As(err, &fe) || fe.Freed != 100 {
		t.Fatalf("GarbageCollect = %v, want a FreeDiskSpaceError with 100 bytes freed", err)
	}
	if got, want := h.rt.imageIDs(), []string{"new"}; !slices.Equal(got, want) {
		t.Fatalf("images left = %v, want %v", got, want)
	}
	h.clock.Step(time.Minute)
	if freed, err := h.gc.DeleteUnusedImages(context.Background()); err != nil || freed != 100 {
		t.Fatalf("DeleteUnusedImages = %d, %v; want 100", freed, err)
	}
	if got := h.rt.imageIDs(); len(got) != 0 {
		t.Fatalf("images left = %v, want none", got)
	}
}

// MaxAge removes images unused for longer, whatever the usage; an image never
// used counts from its first detection.
func TestGarbageCollectMaxAge(t *testing.T) {
	h := newImageHarness(t, Options{MaxAge: 10 * time.Minute, FsStats: fixedFs(1000, 1000, nil)})
	used, idle, kept := image("used", 100), image("idle", 100), pinned(image("kept", 100))
	h.rt.setImages(used, idle, kept)
	h.rt.setContainers(usingImage("c", used, "tag", exited))
	gc := func() {
		t.Helper()
		if err := h.gc.GarbageCollect(context.Background()); err != nil {
			t.Fatalf("GarbageCollect: %v", err)
		}
	}
	gc()                          // t0: all detected, used in use
	h.clock.Step(5 * time.Minute) // t0+5m: used still in use
	gc()                          //
	h.rt.setContainers()          // its container is removed
	h.clock.Step(5 * time.Minute) // t0+10m: idle unused for 10 min exactly
	gc()                          //
	if got, want := h.rt.imageIDs(), []string{"idle", "kept", "used"}; !slices.Equal(got, want) {
		t.Fatalf("at t0+10m images = %v, want %v", got, want)
	}
	h.clock.Step(time.Second)
	gc()
	if got, want := h.rt.imageIDs(), []string{"kept", "used"}; !slices.Equal(got, want) {
		t.Fatalf("at t0+10m1s images = %v, want %v", got, want)
	}
	h.clock.Step(5 * time.Minute) // used last seen in use at t0+5m
	gc()
	if got, want := h.rt.imageIDs(), []string{"kept"}; !slices.Equal(got, want) {
		t.Fatalf("at t0+15m1s images = %v, want %v", got, want)
	}
}

func TestDeleteUnusedImages(t *testing.T) {
	failing := errors.New("image is busy")
	fs := FsStatsFunc(func(context.Context) (uint64, uint64, error) {
		t.Error("DeleteUnusedImages read the filesystem stats")
		return 0, 0, nil
	})
	h := newImageHarness(t, Options{FsStats: fs})
	inUse := image("in-use", 1)
	h.rt.setImages(inUse, pinned(image("pinned", 2)), image("stuck", 4), image("d", 8), image("e", 16))
	h.rt.setContainers(usingImage("c", inUse, "ref", exited))
	h.rt.failRemove = map[string]error{"stuck": failing}
	h.detect(t)
	h.clock.Step(DefaultMinAge)
	h.rt.mu.Lock()
	h.rt.images = append(h.rt.images, image("young", 32))
	h.rt.mu.Unlock()

	freed, err := h.gc.DeleteUnusedImages(context.Background())
	if freed != 24 {
		t.Errorf("freed = %d, want 24 (d and e)", freed)
	}
	if !errors.Is(err, failing) || !strings.Contains(err.Error(), "remove image stuck") {
		t.Errorf("err = %v, want the failure to remove stuck", err)
	}
	if got, want := h.rt.imageIDs(), []string{"in-use", "pinned", "stuck", "young"}; !slices.Equal(got, want) {
		t.Errorf("images left = %v, want %v", got, want)
	}
}

// Removing an image the runtime no longer has is not an error.
func TestRemoveImageGoneMeanwhile(t *testing.T) {
	h := newImageHarness(t, Options{})
	h.rt.setImages(image("a", 1))
	h.detect(t)
	h.clock.Step(DefaultMinAge)
	h.gc.mu.Lock()
	cands, err := h.gc.candidates(context.Background(), h.clock.Now())
	h.gc.mu.Unlock()
	if err != nil || len(cands) != 1 {
		t.Fatalf("candidates = %v, %v", cands, err)
	}
	h.rt.setImages()
	h.gc.mu.Lock()
	err = h.gc.remove(context.Background(), cands[0], "test")
	h.gc.mu.Unlock()
	if err != nil {
		t.Fatalf("remove: %v", err)
	}
}

// A pin that goes away makes the image collectable; records of images that
// went are dropped.
func TestDetectRefreshesRecords(t *testing.T) {
	h := newImageHarness(t, Options{})
	h.rt.setImages(pinned(image("a", 1)), image("b", 2))
	h.detect(t)
	if !h.gc.records["a"].pinned || len(h.gc.records) != 2 {
		t.Fatalf("records after the first detection: %+v", h.gc.records)
	}
	first := h.gc.records["a"].firstDetected
	h.clock.Step(time.Minute)
	h.rt.setImages(image("a", 3))
	h.detect(t)
	r := h.gc.records["a"]
	if r.pinned || r.size != 3 || !r.firstDetected.Equal(first) || len(h.gc.records) != 1 {
		t.Fatalf("record of a = %+v, records %d", r, len(h.gc.records))
	}
}

func TestNewValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		drop func(*Options) // unsets a required field
		want string         // "" = valid
	}{
		{name: "defaults"},
		{name: "explicit", o: Options{HighThresholdPercent: 100, LowThresholdPercent: 1, MinAge: time.Second, MaxAge: time.Hour}},
		{name: "high above 100", o: Options{HighThresholdPercent: 101}, want: "HighThresholdPercent 101: must be between 0 and 100"},
		{name: "negative high", o: Options{HighThresholdPercent: -1}, want: "HighThresholdPercent -1"},
		{name: "negative low", o: Options{LowThresholdPercent: -5}, want: "LowThresholdPercent -5: must be between 0 and 100"},
		{name: "low above high", o: Options{HighThresholdPercent: 70}, want: "LowThresholdPercent 80: must be less than HighThresholdPercent 70"},
		{name: "low equal to high", o: Options{HighThresholdPercent: 60, LowThresholdPercent: 60}, want: "LowThresholdPercent 60: must be less than"},
		{name: "negative min age", o: Options{MinAge: -time.Second}, want: "MinAge -1s: must not be negative"},
		{name: "negative max age", o: Options{MaxAge: -time.Second}, want: "MaxAge -1s: must not be negative"},
		{name: "max age not above min age", o: Options{MaxAge: time.Minute}, want: "MaxAge 1m0s: must be greater than MinAge 2m0s"},
		{name: "no images", drop: func(o *Options) { o.Images = nil }, want: "Images: required"},
		{name: "no runtime", drop: func(o *Options) { o.Runtime = nil }, want: "Runtime: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Images, o.Runtime = &fakeRuntime{}, &fakeRuntime{}
			if tc.drop != nil {
				tc.drop(&o)
			}
			gc, err := New(o)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("New: err = %v, want one containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if tc.name == "defaults" && (gc.o.HighThresholdPercent != 85 || gc.o.LowThresholdPercent != 80 || gc.o.MinAge != 2*time.Minute || gc.o.MaxAge != 0 || gc.o.Period != 5*time.Minute) {
				t.Errorf("defaults = %+v", gc.o)
			}
		})
	}
}

// Run collects at once, then every Period. Images found at the start count as
// first detected then, so MinAge protects them for the first collection.
func TestImageGCRun(t *testing.T) {
	ran := make(chan struct{})
	h := newImageHarness(t, Options{
		HighThresholdPercent: 90, LowThresholdPercent: 80,
		FsStats: FsStatsFunc(func(context.Context) (uint64, uint64, error) {
			ran <- struct{}{}
			return 1000, 50, nil
		}),
	})
	h.rt.setImages(image("a", 500))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.gc.Run(ctx) }()

	<-ran // first collection, at the start: a too young
	h.clock.Step(DefaultImagePeriod)
	<-ran // second collection: a is 5 min old
	cancel()
	<-done
	if got := h.rt.imageIDs(); len(got) != 0 {
		t.Fatalf("images left = %v, want none", got)
	}
	// The first collection failed (a too young), the second succeeded: one
	// FreeDiskSpaceFailed, no ImageGCFailed (only repeated failures give it).
	if got, want := h.events.reasons(), []string{ReasonFreeDiskSpaceFailed}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

// Repeated failures give ImageGCFailed from the second on.
func TestImageGCRunRepeatedFailures(t *testing.T) {
	ran := make(chan struct{})
	reported := make(chan string, 4)
	h := newImageHarness(t, Options{
		FsStats: FsStatsFunc(func(context.Context) (uint64, uint64, error) {
			ran <- struct{}{}
			return 0, 0, errors.New("no stats")
		}),
	})
	h.gc.o.Recorder = func(reason, _ string) { reported <- reason }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.gc.Run(ctx) }()
	<-ran // the first failure is only logged
	h.clock.Step(DefaultImagePeriod)
	<-ran
	if got := <-reported; got != ReasonImageGCFailed {
		t.Fatalf("second failure reported as %q, want %q", got, ReasonImageGCFailed)
	}
	h.clock.Step(DefaultImagePeriod)
	<-ran
	if got := <-reported; got != ReasonImageGCFailed {
		t.Fatalf("third failure reported as %q, want %q", got, ReasonImageGCFailed)
	}
	cancel()
	<-done
	if len(reported) != 0 {
		t.Fatalf("unexpected event %q", <-reported)
	}
}

// High threshold 100 without MaxAge: Run only tracks images, it never reads
// the filesystem stats or removes anything.
func TestImageGCRunDisabled(t *testing.T) {
	h := newImageHarness(t, Options{
		HighThresholdPercent: 100, LowThresholdPercent: 99,
		FsStats: FsStatsFunc(func(context.Context) (uint64, uint64, error) {
			t.Error("filesystem stats read with collection off")
			return 1000, 0, nil
		}),
	})
	listed := make(chan struct{})
	h.rt.listedImages = listed
	h.rt.setImages(image("a", 1))
	start := h.clock.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.gc.Run(ctx) }()
	<-listed // the start's detection
	h.clock.Step(DefaultImagePeriod)
	<-listed // the next one: the first is over
	cancel()
	<-done
	h.gc.mu.Lock()
	defer h.gc.mu.Unlock()
	if r := h.gc.records["a"]; r == nil || !r.firstDetected.Equal(start) {
		t.Fatalf("record of a = %+v, want one first detected at the start", r)
	}
	if got := h.rt.imageIDs(); len(got) != 1 {
		t.Fatalf("images left = %v, want a", got)
	}
}

func TestDefaultFsStats(t *testing.T) {
	rt := &fakeRuntime{}
	s := statfsImageFs{rt}
	if _, _, err := s.FsStats(context.Background()); err == nil || !strings.Contains(err.Error(), "no image filesystem") {
		t.Fatalf("FsStats without a filesystem: err = %v", err)
	}
	if runtime.GOOS != "linux" {
		t.Skip("statfs is Linux only")
	}
	rt.mountpoint = t.TempDir()
	capacity, available, err := s.FsStats(context.Background())
	if err != nil || capacity == 0 || available > capacity {
		t.Fatalf("FsStats = %d, %d, %v", capacity, available, err)
	}
	rt.mountpoint = "/nonexistent/imagegc"
	if _, _, err := s.FsStats(context.Background()); err == nil || !strings.Contains(err.Error(), "statfs /nonexistent/imagegc") {
		t.Fatalf("FsStats of a missing mountpoint: err = %v", err)
	}
}
