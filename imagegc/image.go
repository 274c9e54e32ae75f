package imagegc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"slices"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"
)

// Images is the part of the CRI image service the image garbage collector
// uses. k8s.io/cri-api's internalapi.ImageManagerService (and so
// k8s.io/cri-client's remote image service) satisfies it.
type Images interface {
	ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error)
	RemoveImage(ctx context.Context, image *runtimeapi.ImageSpec) error
	ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error)
}

// ContainerLister lists containers; the image garbage collector asks it
// (without a filter: every state, exited containers included) which images
// are in use. internalapi.RuntimeService satisfies it.
type ContainerLister interface {
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
}

// FsStats gives the size of the filesystem holding the images and how much of
// it is available, in bytes: what the kubelet reads from cAdvisor's
// ImagesFsInfo. Usage is computed from these two, so everything on that
// filesystem counts, not only the images.
type FsStats interface {
	FsStats(ctx context.Context) (capacity, available uint64, err error)
}

// FsStatsFunc adapts a function to FsStats.
type FsStatsFunc func(ctx context.Context) (capacity, available uint64, err error)

// FsStats calls f.
func (f FsStatsFunc) FsStats(ctx context.Context) (capacity, available uint64, err error) {
	return f(ctx)
}

// Default values of Options (the kubelet's).
const (
	DefaultHighThresholdPercent = 85
	DefaultLowThresholdPercent  = 80
	DefaultMinAge               = 2 * time.Minute
	DefaultImagePeriod          = 5 * time.Minute
)

// Options configures an ImageGC. Zero values pick the defaults given with each
// field; OptionsFromConfig fills the policy from a KubeletConfiguration.
type Options struct {
	// HighThresholdPercent: a collection that finds the image filesystem at
	// this usage or above removes images (default 85). 100 with MaxAge 0
	// turns periodic collection off in Run, as in the kubelet.
	HighThresholdPercent int
	// LowThresholdPercent: the usage a collection frees down to; it must be
	// below HighThresholdPercent (default 80).
	LowThresholdPercent int
	// MinAge: an image is not removed until this long after it was first
	// detected, so that a freshly pulled image survives until its container
	// is created (default 2 min, as the kubelet's imageMinimumGCAge, which
	// also treats 0 as unset).
	MinAge time.Duration
	// MaxAge: an image unused for longer is removed whatever the disk usage
	// (0, the default, turns it off). Must be greater than MinAge.
	MaxAge time.Duration

	// Images lists, removes and locates images (required).
	Images Images
	// Runtime lists the containers whose images are in use (required).
	Runtime ContainerLister
	// FsStats gives the image filesystem's capacity and available bytes
	// (default: statfs(2) of the mountpoint ImageFsInfo reports; Linux only).
	FsStats FsStats
	// Recorder receives the FreeDiskSpaceFailed, InvalidDiskCapacity and
	// ImageGCFailed warnings (optional).
	Recorder Recorder

	// Period is the time between two collections in Run (default 5 min, the
	// kubelet's ImageGCPeriod).
	Period time.Duration
	// Clock gives the time and drives Run (default: the real clock).
	Clock clock.WithTicker
	// Logger receives the collector's logs (default slog.Default()).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.HighThresholdPercent == 0 {
		o.HighThresholdPercent = DefaultHighThresholdPercent
	}
	if o.LowThresholdPercent == 0 {
		o.LowThresholdPercent = DefaultLowThresholdPercent
	}
	if o.MinAge == 0 {
		o.MinAge = DefaultMinAge
	}
	if o.Period <= 0 {
		o.Period = DefaultImagePeriod
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FsStats == nil && o.Images != nil {
		o.FsStats = statfsImageFs{o.Images}
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.HighThresholdPercent < 0 || o.HighThresholdPercent > 100 {
		errs = append(errs, fmt.Errorf("HighThresholdPercent %d: must be between 0 and 100", o.HighThresholdPercent))
	}
	if o.LowThresholdPercent < 0 || o.LowThresholdPercent > 100 {
		errs = append(errs, fmt.Errorf("LowThresholdPercent %d: must be between 0 and 100", o.LowThresholdPercent))
	}
	if o.LowThresholdPercent >= o.HighThresholdPercent {
		errs = append(errs, fmt.Errorf("LowThresholdPercent %d: must be less than HighThresholdPercent %d", o.LowThresholdPercent, o.HighThresholdPercent))
	}
	if o.MinAge < 0 {
		errs = append(errs, fmt.Errorf("MinAge %v: must not be negative", o.MinAge))
	}
	if o.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("MaxAge %v: must not be negative", o.MaxAge))
	} else if o.MaxAge > 0 && o.MaxAge <= o.MinAge {
		errs = append(errs, fmt.Errorf("MaxAge %v: must be greater than MinAge %v", o.MaxAge, o.MinAge))
	}
	if o.Images == nil {
		errs = append(errs, errors.New("Images: required"))
	}
	if o.Runtime == nil {
		errs = append(errs, errors.New("Runtime: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("imagegc: invalid options: %w", err)
	}
	return nil
}

// ImageGC removes unused images as the kubelet's image garbage collector
// does. Its methods are safe for concurrent use; collections are serialized.
type ImageGC struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex // serializes collections; guards records
	records map[string]*imageRecord
}

// imageRecord is what the collector knows of an image.
type imageRecord struct {
	firstDetected time.Time // when a detection first listed it
	lastUsed      time.Time // the last detection that found a container using it; zero if none did
	size          uint64
	pinned        bool
}

// New checks the options and returns an image garbage collector. Nothing is
// detected until the first call of Run, GarbageCollect or DeleteUnusedImages.
func New(o Options) (*ImageGC, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &ImageGC{o: o, log: o.Logger.With("component", "imagegc"), records: map[string]*imageRecord{}}, nil
}

// Run collects at once and then every Period until ctx ends. When
// HighThresholdPercent is 100 and MaxAge is 0 it only detects images (which
// DeleteUnusedImages relies on for their ages), as the kubelet does. A failed
// collection is logged; from the second failure in a row on, it is also
// reported to the Recorder as ImageGCFailed.
func (g *ImageGC) Run(ctx context.Context) {
	disabled := g.o.HighThresholdPercent == 100 && g.o.MaxAge == 0
	if disabled {
		g.log.Info("image garbage collection off (high threshold 100%, no maximum age); tracking image use only")
	}
	ticker := g.o.Clock.NewTicker(g.o.Period)
	defer ticker.Stop()
	failed := false
	for {
		if disabled {
			g.mu.Lock()
			_, err := g.detect(ctx, g.o.Clock.Now())
			g.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				g.log.Warn("detect images", "err", err)
			}
		} else if err := g.GarbageCollect(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if failed {
				g.log.Error("image garbage collection failed again", "err", err)
				g.o.Recorder.record(ReasonImageGCFailed, err.Error())
			} else {
				g.log.Error("image garbage collection failed", "err", err)
			}
			failed = true
		} else {
			if failed {
				g.log.Info("image garbage collection succeeded")
			}
			failed = false
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

// GarbageCollect applies the policy once. It first refreshes what it knows of
// the images (new ones are first detected now, those used by a container of
// any state are used now). With MaxAge, it removes every image unused for
// longer than MaxAge. Then, if the image filesystem's usage is at or above
// HighThresholdPercent, it removes images, least recently used first (ties:
// first detected first), until the bytes they held bring the usage down to
// LowThresholdPercent. Images in use, pinned by the runtime or first detected
// less than MinAge ago are never removed. When not enough could be freed the
// error is a *FreeDiskSpaceError, also reported to the Recorder as
// FreeDiskSpaceFailed. A failed removal does not stop the others; the error
// joins them all.
func (g *ImageGC) GarbageCollect(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.o.Clock.Now()
	candidates, err := g.candidates(ctx, now)
	if err != nil {
		return fmt.Errorf("image garbage collection: %w", err)
	}
	var errs []error
	candidates, err = g.freeOld(ctx, candidates, now)
	if err != nil {
		errs = append(errs, err)
	}

	capacity, available, err := g.o.FsStats.FsStats(ctx)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("image filesystem stats: %w", err))...)
	}
	if available > capacity {
		g.log.Warn("image filesystem: available bytes larger than capacity", "available", available, "capacity", capacity)
		available = capacity
	}
	if capacity == 0 {
		err := errors.New("invalid capacity 0 on the image filesystem")
		g.o.Recorder.record(ReasonInvalidDiskCapacity, err.Error())
		return errors.Join(append(errs, err)...)
	}

	usage := 100 - int(mulDiv(available, 100, capacity))
	if usage < g.o.HighThresholdPercent {
		g.log.Debug("image filesystem below the high threshold", "usage", usage, "highThreshold", g.o.HighThresholdPercent)
		return errors.Join(errs...)
	}
	target := mulDiv(capacity, uint64(100-g.o.LowThresholdPercent), 100) // available bytes at the low threshold
	var want uint64
	if target > available {
		want = target - available
	}
	g.log.Info("image filesystem over the high threshold, freeing down to the low threshold",
		"usage", usage, "highThreshold", g.o.HighThresholdPercent, "lowThreshold", g.o.LowThresholdPercent, "bytesToFree", want)
	freed, err := g.freeSpace(ctx, want, now, candidates)
	if err != nil {
		errs = append(errs, fmt.Errorf("free %d bytes (freed %d): %w", want, freed, err))
	}
	if freed < want {
		fe := &FreeDiskSpaceError{Wanted: want, Freed: freed, UsagePercent: usage, HighThresholdPercent: g.o.HighThresholdPercent}
		g.o.Recorder.record(ReasonFreeDiskSpaceFailed, fe.Error())
		errs = append(errs, fe)
	}
	return errors.Join(errs...)
}

// DeleteUnusedImages removes every image that no container uses (whatever its
// state), that the runtime does not pin and that was first detected at least
// MinAge ago, least recently used first, and returns the bytes they held. It
// is the kubelet's on-demand collection, which eviction calls to reclaim disk;
// it ignores the thresholds and MaxAge. The bytes of the images removed are
// returned even with an error.
func (g *ImageGC) DeleteUnusedImages(ctx context.Context) (freed uint64, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.o.Clock.Now()
	candidates, err := g.candidates(ctx, now)
	if err != nil {
		return 0, fmt.Errorf("delete unused images: %w", err)
	}
	freed, err = g.freeSpace(ctx, math.MaxUint64, now, candidates)
	if err != nil {
		return freed, fmt.Errorf("delete unused images: %w", err)
	}
	return freed, nil
}

// detect refreshes the records from the runtime: images seen for the first
// time are first detected at now, images a container uses (any state) are
// used at now, records of images that are gone are dropped. It returns the IDs
// of the images in use. g.mu must be held.
func (g *ImageGC) detect(ctx context.Context, now time.Time) (map[string]bool, error) {
	images, err := g.o.Images.ListImages(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	containers, err := g.o.Runtime.ListContainers(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	// A container names its image in several ways (image ID, repo digest,
	// the reference it was created from); any of them marks it in use.
	refs := map[string]bool{}
	for _, c := range containers {
		for _, r := range []string{c.GetImageId(), c.GetImageRef(), c.GetImage().GetImage(), c.GetImage().GetUserSpecifiedImage(), c.GetImage().GetImageRef()} {
			if r != "" {
				refs[r] = true
			}
		}
	}
	inUse := map[string]bool{}
	present := make(map[string]bool, len(images))
	for _, img := range images {
		id := img.GetId()
		if id == "" {
			continue
		}
		first := !present[id] // the same ID may be listed once per runtime handler
		present[id] = true
		rec, ok := g.records[id]
		if !ok {
			rec = &imageRecord{firstDetected: now}
			g.records[id] = rec
			g.log.Debug("image detected", "image", id)
		}
		if first {
			rec.pinned = false
		}
		rec.size = img.GetSize()
		rec.pinned = rec.pinned || img.GetPinned()
		if imageUsed(img, refs) {
			inUse[id] = true
			rec.lastUsed = now
		}
	}
	for id := range g.records {
		if !present[id] {
			delete(g.records, id)
		}
	}
	return inUse, nil
}

func imageUsed(img *runtimeapi.Image, refs map[string]bool) bool {
	if refs[img.GetId()] {
		return true
	}
	for _, r := range img.GetRepoDigests() {
		if refs[r] {
			return true
		}
	}
	for _, r := range img.GetRepoTags() {
		if refs[r] {
			return true
		}
	}
	return false
}

// candidate is an image that may be removed.
type candidate struct {
	id string
	imageRecord
}

// candidates detects the images and returns those neither in use nor pinned,
// least recently used first, ties broken by the first detection (then the ID,
// for a stable order). g.mu must be held.
func (g *ImageGC) candidates(ctx context.Context, now time.Time) ([]candidate, error) {
	inUse, err := g.detect(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]candidate, 0, len(g.records))
	for id, rec := range g.records {
		if inUse[id] || rec.pinned {
			continue
		}
		out = append(out, candidate{id: id, imageRecord: *rec})
	}
	slices.SortFunc(out, func(a, b candidate) int {
		if c := a.lastUsed.Compare(b.lastUsed); c != 0 {
			return c
		}
		if c := a.firstDetected.Compare(b.firstDetected); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return out, nil
}

// freeOld removes the candidates unused for longer than MaxAge and returns the
// others. An image never seen in use counts from its first detection, so no
// image goes before MaxAge has passed since the collector first saw it (the
// kubelet waits MaxAge after its start for the same reason).
func (g *ImageGC) freeOld(ctx context.Context, candidates []candidate, now time.Time) ([]candidate, error) {
	if g.o.MaxAge == 0 {
		return candidates, nil
	}
	var errs []error
	kept := candidates[:0:0]
	for _, c := range candidates {
		last := c.lastUsed
		if last.IsZero() {
			last = c.firstDetected
		}
		if now.Sub(last) <= g.o.MaxAge {
			kept = append(kept, c)
			continue
		}
		if err := g.remove(ctx, c, "unused for longer than the maximum age"); err != nil {
			errs = append(errs, err)
			kept = append(kept, c)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return kept, fmt.Errorf("remove images unused for longer than %v: %w", g.o.MaxAge, err)
	}
	return kept, nil
}

// freeSpace removes candidates in order, skipping those first detected less
// than MinAge ago, until the bytes they held reach want. It returns the bytes
// freed and the removal failures, joined.
func (g *ImageGC) freeSpace(ctx context.Context, want uint64, now time.Time, candidates []candidate) (uint64, error) {
	var freed uint64
	var errs []error
	for _, c := range candidates {
		if freed >= want {
			break
		}
		if now.Sub(c.firstDetected) < g.o.MinAge {
			g.log.Debug("image too young to remove", "image", c.id, "age", now.Sub(c.firstDetected), "minAge", g.o.MinAge)
			continue
		}
		if err := g.remove(ctx, c, "disk usage"); err != nil {
			errs = append(errs, err)
			continue
		}
		freed += c.size
	}
	return freed, errors.Join(errs...)
}

// remove removes one image and forgets it. An image already gone is removed.
func (g *ImageGC) remove(ctx context.Context, c candidate, reason string) error {
	g.log.Info("removing image", "image", c.id, "size", c.size, "reason", reason, "lastUsed", c.lastUsed, "firstDetected", c.firstDetected)
	if err := g.o.Images.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: c.id}); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove image %s: %w", c.id, err)
	}
	delete(g.records, c.id)
	return nil
}

// mulDiv returns a*b/c without overflowing for a ≤ c (c > 0).
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}
