package podsource

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
)

// Op says how an Update applies to what the consumer knows of the source.
type Op int

const (
	// Set: the update's pods are the source's full desired set; pods of the
	// source missing from it are to be removed.
	Set Op = iota
)

func (o Op) String() string {
	if o == Set {
		return "SET"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Update is the desired set of pods of a manifest directory.
type Update struct {
	Op Op
	// Pods holds one pod per valid manifest, in file name order. Each update
	// has its own copies: the consumer may keep and modify them.
	Pods []*v1.Pod
	// Errors lists the manifests that were rejected (*ManifestError, naming
	// file and field) and, first, a directory that cannot be read.
	Errors []error
}

// Options configure a ManifestDir.
type Options struct {
	// Dir is the manifest directory (--pod-manifest-path). Required. It need
	// not exist yet: it is looked for again at every rescan.
	Dir string
	// NodeName is the node's name, suffixed to the pods' names. Required.
	NodeName string
	// Period between full rescans of the directory (default 20 s).
	Period time.Duration
	// Debounce is how long to wait after a file system event before
	// rescanning, so a burst of events gives one scan (default 100 ms;
	// negative: none).
	Debounce time.Duration
	// Clock (default: the real clock).
	Clock clock.WithTicker
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

const (
	defaultPeriod   = 20 * time.Second
	defaultDebounce = 100 * time.Millisecond
	// maxManifestSize bounds what is read of one file.
	maxManifestSize = 10 << 20
)

// ManifestDir is the static pod source of one manifest directory.
type ManifestDir struct {
	dir, node        string
	period, debounce time.Duration
	clock            clock.WithTicker
	log              *slog.Logger
	updates          chan Update
	started          atomic.Bool

	// scans counts directory scans and emits the updates sent (for tests).
	scans, emits atomic.Int64

	// State of the Run goroutine.
	cache    map[string]parsed       // file → its last parse
	seen     map[types.UID]time.Time // when each current pod was first seen
	owners   map[string]string       // namespace/name → file, in the last scan
	current  map[types.UID]string    // pods of the last scan → "name (file)", for logs
	logged   map[string]string       // file ("" for the directory) → last error logged
	last     string                  // fingerprint of the last update sent
	sent     bool                    // an update has been sent
	watchErr string                  // last watch error logged
}

type parsed struct {
	sum [sha256.Size]byte
	pod *v1.Pod
	err error
}

// NewManifestDir returns the source for o.Dir. Nothing is read before Run.
func NewManifestDir(o Options) (*ManifestDir, error) {
	if o.Dir == "" {
		return nil, errors.New("podsource: no manifest directory given")
	}
	if o.NodeName == "" {
		return nil, errors.New("podsource: no node name given")
	}
	if msgs := validation.IsDNS1123Subdomain(strings.ToLower(o.NodeName)); len(msgs) > 0 {
		return nil, fmt.Errorf("podsource: node name %q: %s", o.NodeName, strings.Join(msgs, "; "))
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("podsource: manifest directory %q: %w", o.Dir, err)
	}
	d := &ManifestDir{
		dir:      dir,
		node:     o.NodeName,
		period:   cmp.Or(max(o.Period, 0), defaultPeriod),
		debounce: cmp.Or(o.Debounce, defaultDebounce),
		clock:    o.Clock,
		log:      o.Logger,
		updates:  make(chan Update, 1),
		cache:    map[string]parsed{},
		seen:     map[types.UID]time.Time{},
		owners:   map[string]string{},
		current:  map[types.UID]string{},
		logged:   map[string]string{},
	}
	if d.clock == nil {
		d.clock = clock.RealClock{}
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.log = d.log.With("source", "file", "dir", dir)
	return d, nil
}

// Updates delivers the desired set of pods: first after the initial scan
// (even when empty or the directory is missing), then whenever the set or
// the errors change. It holds at most one update: a newer one replaces an
// unread older one (each is complete). It is closed when Run returns.
func (d *ManifestDir) Updates() <-chan Update { return d.updates }

// Run watches the directory until ctx is done. Call it once.
func (d *ManifestDir) Run(ctx context.Context) {
	if !d.started.CompareAndSwap(false, true) {
		d.log.Error("podsource: ManifestDir.Run called twice")
		return
	}
	defer close(d.updates)
	d.log.Info("reading static pod manifests", "node", d.node, "period", d.period)
	ticker := d.clock.NewTicker(d.period)
	defer ticker.Stop()

	var w *watcher
	defer func() {
		if w != nil {
			w.close()
		}
	}()
	var timer clock.Timer
	var debounced <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()

	// Watch before scanning, so nothing changed after the scan is missed.
	w = d.ensureWatch(w)
	d.sync()
	for {
		var changes <-chan struct{}
		if w != nil {
			changes = w.changes
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
			w = d.ensureWatch(w)
			d.sync()
		case _, ok := <-changes:
			if !ok { // the directory went away: rewatch at the next scan
				d.log.Debug("manifest directory watch ended", "err", w.err())
				w.close()
				w = nil
			}
			switch {
			case d.debounce < 0:
				w = d.ensureWatch(w)
				d.sync()
			case debounced == nil:
				timer = d.clock.NewTimer(d.debounce)
				debounced = timer.C()
			}
		case <-debounced:
			debounced, timer = nil, nil
			w = d.ensureWatch(w)
			d.sync()
		}
	}
}

// ensureWatch returns w while it watches, else a new watch (nil when the
// directory cannot be watched).
func (d *ManifestDir) ensureWatch(w *watcher) *watcher {
	if w != nil {
		if w.watching() {
			return w
		}
		d.log.Debug("manifest directory no longer watched")
		w.close()
	}
	w, err := newWatcher(d.dir)
	if err != nil {
		if msg := err.Error(); msg != d.watchErr {
			d.watchErr = msg
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errors.ErrUnsupported) {
				d.log.Debug("not watching manifest directory, rescanning periodically", "err", err)
			} else {
				d.log.Warn("cannot watch manifest directory, rescanning periodically", "period", d.period, "err", err)
			}
		}
		return nil
	}
	d.watchErr = ""
	return w
}

// sync scans the directory and sends an update if anything changed.
func (d *ManifestDir) sync() {
	d.scans.Add(1)
	pods, errs, fingerprint := d.scan()
	if d.sent && fingerprint == d.last {
		return
	}
	d.last, d.sent = fingerprint, true
	u := Update{Op: Set, Pods: make([]*v1.Pod, 0, len(pods)), Errors: errs}
	for _, p := range pods {
		pod := p.DeepCopy()
		pod.Annotations[AnnotationSeen] = d.seen[pod.UID].Format(time.RFC3339Nano)
		u.Pods = append(u.Pods, pod)
	}
	// Replace an unread update: the channel holds only the latest.
	select {
	case <-d.updates:
	default:
	}
	d.updates <- u
	d.emits.Add(1)
}

// scan reads the whole directory: the pods of the valid manifests in file
// name order (shared with the parse cache: copy before changing), the
// errors, and a fingerprint of both to tell whether anything changed.
func (d *ManifestDir) scan() ([]*v1.Pod, []error, string) {
	type candidate struct {
		file string
		pod  *v1.Pod
	}
	var cands []candidate
	var errs []error

	entries, err := os.ReadDir(d.dir)
	if err != nil {
		errs = append(errs, fmt.Errorf("manifest directory: %w", err))
		entries = nil
	}
	live := map[string]bool{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		file := filepath.Join(d.dir, e.Name())
		live[file] = true
		pod, err := d.load(file)
		switch {
		case err != nil:
			errs = append(errs, err)
		case pod != nil:
			cands = append(cands, candidate{file, pod})
		}
	}
	for file := range d.cache {
		if !live[file] {
			delete(d.cache, file)
		}
	}

	// One pod per namespace/name (and UID). A file that held the name in
	// the last scan keeps it; otherwise the first file in name order wins.
	key := func(p *v1.Pod) string { return p.Namespace + "/" + p.Name }
	names := map[string]string{}
	uids := map[types.UID]string{}
	state := make([]int, len(cands)) // 0 undecided, 1 accepted, 2 rejected
	claim := func(i int) {
		c := cands[i]
		dup := func(path, value, what, other string) {
			state[i] = 2
			errs = append(errs, &ManifestError{File: c.file, Fields: field.ErrorList{{
				Type: field.ErrorTypeDuplicate, Field: path, BadValue: value,
				Detail: fmt.Sprintf("%s is already defined in %s", what, other),
			}}})
		}
		if other, ok := names[key(c.pod)]; ok {
			dup("metadata.name", c.pod.Name, "pod "+key(c.pod), other)
			return
		}
		if other, ok := uids[c.pod.UID]; ok {
			dup("metadata.uid", string(c.pod.UID), "uid "+string(c.pod.UID), other)
			return
		}
		state[i] = 1
		names[key(c.pod)] = c.file
		uids[c.pod.UID] = c.file
	}
	for i, c := range cands {
		if d.owners[key(c.pod)] == c.file {
			claim(i)
		}
	}
	for i := range cands {
		if state[i] == 0 {
			claim(i)
		}
	}

	var pods []*v1.Pod
	var fp strings.Builder
	seen := map[types.UID]time.Time{}
	current := map[types.UID]string{}
	for i, c := range cands {
		if state[i] != 1 {
			continue
		}
		t, ok := d.seen[c.pod.UID]
		if !ok {
			t = d.clock.Now()
		}
		seen[c.pod.UID] = t
		pods = append(pods, c.pod)
		current[c.pod.UID] = fmt.Sprintf("%s (%s)", key(c.pod), c.file)
		fmt.Fprintf(&fp, "pod %s %s\n", c.file, c.pod.UID)
	}
	slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(errFile(a), errFile(b)) })
	for _, err := range errs {
		fmt.Fprintf(&fp, "err %s\n", err)
	}
	d.report(errs, current)
	d.seen, d.owners, d.current = seen, names, current
	return pods, errs, fp.String()
}

// load reads and parses one directory entry: (nil, nil) for entries that
// are not manifests (directories, devices, sockets).
func (d *ManifestDir) load(file string) (*v1.Pod, error) {
	fi, err := os.Stat(file) // follows symlinks, as the kubelet does
	if err != nil {
		return nil, &ManifestError{File: file, Err: stripPath(err)}
	}
	if !fi.Mode().IsRegular() {
		d.log.Debug("skipping manifest directory entry that is not a regular file", "file", file, "mode", fi.Mode().String())
		return nil, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, &ManifestError{File: file, Err: stripPath(err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, &ManifestError{File: file, Err: fmt.Errorf("read: %w", err)}
	}
	if len(data) > maxManifestSize {
		return nil, &ManifestError{File: file, Err: fmt.Errorf("larger than %d bytes", maxManifestSize)}
	}
	sum := sha256.Sum256(data)
	if p, ok := d.cache[file]; ok && p.sum == sum {
		return p.pod, p.err
	}
	pod, err := Parse(file, data, d.node)
	d.cache[file] = parsed{sum: sum, pod: pod, err: err}
	return pod, err
}

// report logs what changed since the last scan: errors once each, pods
// added and removed.
func (d *ManifestDir) report(errs []error, current map[types.UID]string) {
	logged := map[string]string{}
	for _, err := range errs {
		file, msg := errFile(err), err.Error()
		if prev, ok := logged[file]; ok { // several errors for one file (duplicates)
			msg = prev + "; " + msg
		}
		logged[file] = msg
	}
	for file, msg := range logged {
		if d.logged[file] == msg {
			continue
		}
		if file == "" {
			d.log.Warn("cannot read the manifest directory, will retry", "period", d.period, "err", msg)
		} else {
			d.log.Warn("invalid static pod manifest, ignored", "file", file, "err", msg)
		}
	}
	if _, was := d.logged[""]; was {
		if _, is := logged[""]; !is {
			d.log.Info("manifest directory readable again")
		}
	}
	d.logged = logged
	for uid, what := range current {
		if _, ok := d.current[uid]; !ok {
			d.log.Info("static pod added", "pod", what, "uid", uid)
		}
	}
	for uid, what := range d.current {
		if _, ok := current[uid]; !ok {
			d.log.Info("static pod removed", "pod", what, "uid", uid)
		}
	}
}

// errFile is the file an error is about, "" for the directory.
func errFile(err error) string {
	if me, ok := errors.AsType[*ManifestError](err); ok {
		return me.File
	}
	return ""
}

// stripPath drops the path from a *fs.PathError (ManifestError names the
// file already), keeping the cause for errors.Is.
func stripPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
