package objects

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	v1 "k8s.io/api/core/v1"
)

// DirOptions configure a Dir.
type DirOptions struct {
	// Path is the directory of manifests. Required.
	Path string
	// Period is the interval of the full rescan Run does besides watching
	// the directory (default 20s). It catches what the watch cannot: a
	// directory deleted and created again, lost events.
	Period time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Dir is the Source of the ConfigMap and Secret manifests of a directory (see
// the package documentation for the format and the rules). NewDir loads it;
// Run keeps it up to date. Its methods are safe for concurrent use.
type Dir struct {
	path   string
	period time.Duration
	log    *slog.Logger
	store  store

	errMu sync.Mutex
	errs  []error

	// scanMu serializes rescans and guards the scan state below.
	scanMu  sync.Mutex
	files   map[string]*fileState // by file name
	served  map[Ref]*parsedObject // what the store was last given
	dirErr  error                 // the directory cannot be read
	dupErrs map[string][]error    // objects defined in an earlier file too, by file name
	logged  map[string]bool       // the error texts logged (the current errors)
	reads   int                   // files read, for tests
	recheck time.Time             // when a rescan must look at an emptied file again

	// Used by Run's goroutine only.
	running  atomic.Bool
	watched  bool   // the directory is watched
	watchIno uint64 // the inode of the directory watched
	watchErr string // the last error adding the watch, logged once
}

// fileState is what a rescan keeps of a file.
type fileState struct {
	size     int64
	mtime    time.Time
	dev, ino uint64
	// racy is set when the file was modified too recently before it was
	// read for its stat to tell a later write apart (timestamps are coarse):
	// the next rescan reads it again.
	racy bool
	// emptied is set when the file was found empty while racy, its
	// objects kept: a writer may have truncated it and be writing it.
	emptied bool

	objs  map[Ref]*parsedObject // its objects: valid ones and last valid versions kept
	order []Ref                 // objs' keys in file order
	errs  []error               // *FileError
}

// racyWindow exceeds the timestamp granularity of common file systems.
// It is also how long a file found empty right after it was modified keeps
// its objects (see fileState.emptied).
const racyWindow = 2 * time.Second

func (st *fileState) unchanged(fi fs.FileInfo) bool {
	dev, ino := fileID(fi)
	return !st.racy && st.size == fi.Size() && st.mtime.Equal(fi.ModTime()) && st.dev == dev && st.ino == ino
}

// NewDir loads the manifests of o.Path, so lookups work at once; a missing
// or unreadable directory is an error, invalid files are not (see Errors).
func NewDir(o DirOptions) (*Dir, error) {
	if o.Path == "" {
		return nil, errors.New("objects: DirOptions.Path is required")
	}
	if o.Period <= 0 {
		o.Period = 20 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	path := filepath.Clean(o.Path)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("objects: manifest directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("objects: manifest directory %s: not a directory", path)
	}
	d := &Dir{
		path:   path,
		period: o.Period,
		log:    o.Logger,
		store:  newStore(),
		files:  map[string]*fileState{},
		served: map[Ref]*parsedObject{},
		logged: map[string]bool{},
	}
	if err := d.rescan(); err != nil {
		return nil, fmt.Errorf("objects: manifest directory: %w", err)
	}
	cms, secs := d.store.counts()
	d.log.Info("objects: manifest directory loaded", "path", path, "configMaps", cms, "secrets", secs,
		"errors", len(d.Errors()))
	return d, nil
}

// ConfigMap implements Source.
func (d *Dir) ConfigMap(_ context.Context, namespace, name string) (*v1.ConfigMap, error) {
	return d.store.configMap(namespace, name)
}

// Secret implements Source.
func (d *Dir) Secret(_ context.Context, namespace, name string) (*v1.Secret, error) {
	return d.store.secret(namespace, name)
}

// Subscribe implements Notifier. f is called from Run's goroutine after a
// rescan made the change visible to lookups, outside any lock (it may look
// the object up). After cancel returns f is not called again, except for a
// call already under way.
func (d *Dir) Subscribe(f func(Ref)) (cancel func()) {
	return d.store.subs.subscribe(f)
}

// Errors returns the current errors, each a *FileError, in file order: the
// directory's (when it cannot be read), then each file's.
func (d *Dir) Errors() []error {
	d.errMu.Lock()
	defer d.errMu.Unlock()
	return slices.Clone(d.errs)
}

// watchBuffer is the number of events the watcher holds for Run, so that the
// events of one change are drained together.
const watchBuffer = 256

// Run watches the directory and rescans it on every change (the events that
// are pending are drained first, so a burst makes one rescan) and every
// Period, until ctx ends. The periodic rescan also watches the directory
// again when it was deleted and created again. Run is called once.
func (d *Dir) Run(ctx context.Context) {
	if !d.running.CompareAndSwap(false, true) {
		d.log.Error("objects: Dir.Run called while running", "path", d.path)
		return
	}
	defer d.running.Store(false)
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
	)
	w, err := fsnotify.NewBufferedWatcher(watchBuffer)
	if err != nil {
		d.log.Warn("objects: cannot watch the manifest directory: changes are seen at the periodic rescan",
			"path", d.path, "period", d.period, "error", err)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	d.watch(w)
	t := time.NewTicker(d.period)
	defer t.Stop()
	recheck := time.NewTimer(0) // at once: what changed before the watch was set
	defer recheck.Stop()
	// A rescan's error (reading the directory) is kept for Errors and logged by
	// report: the loop carries on and retries at the next event or period.
	for {
		select {
		case <-ctx.Done():
			return
		case <-recheck.C:
			_ = d.rescan()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			gone := d.watchGone(ev)
		drain:
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						events = nil
						break drain
					}
					gone = gone || d.watchGone(ev)
				default:
					break drain
				}
			}
			if gone {
				d.watched = false
				d.watch(w) // a directory moved in place of the old one
			}
			_ = d.rescan()
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow loses events: rescan.
			d.log.Warn("objects: watching the manifest directory", "path", d.path, "error", err)
			_ = d.rescan()
		case <-t.C:
			d.watch(w)
			_ = d.rescan()
		}
		if at := d.recheckAt(); !at.IsZero() {
			recheck.Reset(time.Until(at) + 10*time.Millisecond)
		}
	}
}

// recheckAt returns when a rescan must look at an emptied file again, zero
// when none must.
func (d *Dir) recheckAt() time.Time {
	d.scanMu.Lock()
	defer d.scanMu.Unlock()
	return d.recheck
}

// watchGone says whether ev ends the watch: the directory itself was
// removed or moved.
func (d *Dir) watchGone(ev fsnotify.Event) bool {
	return filepath.Clean(ev.Name) == d.path && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename))
}

// watch makes w watch the directory when it does not already watch the one
// now at Path.
func (d *Dir) watch(w *fsnotify.Watcher) {
	if w == nil {
		return
	}
	fi, err := os.Stat(d.path)
	if err != nil {
		d.watched = false // the rescan reports it
		return
	}
	_, ino := fileID(fi)
	if d.watched && ino == d.watchIno && len(w.WatchList()) > 0 {
		return
	}
	_ = w.Remove(d.path) // the watch of a directory since replaced, if any
	if err := w.Add(d.path); err != nil {
		d.watched = false
		if err.Error() != d.watchErr {
			d.watchErr = err.Error()
			d.log.Warn("objects: cannot watch the manifest directory: changes are seen at the periodic rescan",
				"path", d.path, "period", d.period, "error", err)
		}
		return
	}
	d.watched, d.watchIno, d.watchErr = true, ino, ""
}

// rescan reads the files that changed, updates what is served and notifies
// the subscribers of the objects that changed. It returns the error reading
// the directory, if any: then everything is kept as it was.
func (d *Dir) rescan() error {
	d.scanMu.Lock()
	changed, err := d.scan()
	d.scanMu.Unlock()
	for _, r := range changed {
		d.log.Debug("objects: changed", "object", r.String())
	}
	d.store.subs.notify(changed)
	return err
}

// scan is rescan under scanMu, returning the refs that changed.
func (d *Dir) scan() ([]Ref, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		// Keep serving what was read: the directory may be being replaced.
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		err = fmt.Errorf("reading the directory: %w", err)
		d.dirErr = &FileError{File: d.path, Err: err}
		d.report()
		return nil, d.dirErr
	}
	d.dirErr = nil
	dirty := false
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		name := e.Name()
		if !isManifestName(name) || e.IsDir() {
			continue
		}
		file := filepath.Join(d.path, name)
		fi, err := os.Stat(file) // through symlinks
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone since ReadDir, or a dangling symlink
		}
		if err == nil && !fi.Mode().IsRegular() {
			continue
		}
		seen[name] = true
		old := d.files[name]
		if err == nil && old != nil && old.unchanged(fi) {
			continue
		}
		dirty = true
		d.files[name] = d.load(file, old, err)
	}
	for name := range d.files {
		if !seen[name] {
			delete(d.files, name)
			dirty = true
		}
	}
	d.recheck = time.Time{}
	for _, st := range d.files {
		if at := st.mtime.Add(racyWindow); st.emptied && (d.recheck.IsZero() || at.Before(d.recheck)) {
			d.recheck = at
		}
	}
	var puts []object
	var dels []Ref
	if dirty {
		puts, dels = d.merge()
	}
	d.report() // before the objects are visible: Errors is as current
	if len(puts) == 0 && len(dels) == 0 {
		return nil, nil
	}
	return d.store.apply(puts, dels), nil
}

// load reads and parses file (statErr is the error stat gave, if any). Of
// old, the file's previous state, it keeps the last valid version of each
// object whose document is now invalid, and of every object when an invalid
// document (or the whole file) cannot be tied to one object.
func (d *Dir) load(file string, old *fileState, statErr error) *fileState {
	st := &fileState{objs: map[Ref]*parsedObject{}}
	var p parsedFile
	readAt := time.Now()
	data, fi, err := []byte(nil), fs.FileInfo(nil), statErr
	if err == nil {
		d.reads++
		data, fi, err = readFile(file)
	}
	if err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
		}
		p = parsedFile{unidentified: true, errs: []error{&FileError{File: file, Err: err}}}
		// The zero stat makes the next rescan read the file again.
	} else {
		st.size, st.mtime = fi.Size(), fi.ModTime()
		st.dev, st.ino = fileID(fi)
		st.racy = readAt.Sub(st.mtime) < racyWindow
		p = parseFile(file, data)
		// Found empty just after it was modified: most likely truncated by
		// a writer about to write it, rather than emptied to delete its
		// objects. They are kept until it is written or stays empty.
		st.emptied = st.racy && p.docs == 0 && old != nil && len(old.objs) > 0
	}
	st.errs = p.errs
	for _, o := range p.objs {
		if _, dup := st.objs[o.ref]; dup {
			st.errs = append(st.errs, &FileError{File: file, Document: o.doc, Ref: o.ref,
				Err: errors.New("defined more than once in this file: the first definition is served")})
			continue
		}
		st.objs[o.ref] = o
		st.order = append(st.order, o.ref)
	}
	if old == nil {
		return st
	}
	keep := func(r Ref) {
		if _, ok := st.objs[r]; ok {
			return
		}
		if o, ok := old.objs[r]; ok {
			st.objs[r] = o
			st.order = append(st.order, r)
		}
	}
	for _, r := range p.invalid {
		keep(r)
	}
	if p.unidentified || st.emptied {
		for _, r := range old.order {
			keep(r)
		}
	}
	return st
}

// readFile reads file, up to maxFileSize, and the stat of what it read.
func readFile(file string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	return data, fi, nil
}

// merge computes what is served from the files' objects (an object defined
// in several files comes from the file whose name sorts first) and returns
// what to give the store: the objects that are new or may have changed, the
// objects that are gone.
func (d *Dir) merge() (puts []object, dels []Ref) {
	desired := make(map[Ref]*parsedObject, len(d.served))
	owner := map[Ref]string{}
	d.dupErrs = map[string][]error{}
	for _, name := range slices.Sorted(maps.Keys(d.files)) {
		st := d.files[name]
		file := filepath.Join(d.path, name)
		for _, r := range st.order {
			o := st.objs[r]
			if first, ok := owner[r]; ok {
				d.dupErrs[name] = append(d.dupErrs[name], &FileError{File: file, Document: o.doc, Ref: r,
					Err: fmt.Errorf("also defined in %s, which is served", first)})
				continue
			}
			owner[r] = file
			desired[r] = o
		}
	}
	for r, o := range desired {
		if d.served[r] != o { // the store compares contents
			puts = append(puts, o.object)
		}
	}
	for r := range d.served {
		if _, ok := desired[r]; !ok {
			dels = append(dels, r)
		}
	}
	d.served = desired
	return puts, dels
}

// report publishes the current errors and logs those not logged before.
func (d *Dir) report() {
	var errs []error
	if d.dirErr != nil {
		errs = append(errs, d.dirErr)
	}
	for _, name := range slices.Sorted(maps.Keys(d.files)) {
		errs = append(errs, d.files[name].errs...)
		errs = append(errs, d.dupErrs[name]...)
	}
	logged := make(map[string]bool, len(errs))
	for _, err := range errs {
		msg := err.Error()
		if !d.logged[msg] && !logged[msg] {
			d.log.Warn("objects: manifest error", "error", msg)
		}
		logged[msg] = true
	}
	d.logged = logged
	d.errMu.Lock()
	d.errs = errs
	d.errMu.Unlock()
}
