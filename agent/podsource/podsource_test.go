package podsource

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	testclock "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)

func podYAML(name, image string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  containers:\n  - name: main\n    image: %s\n", name, image)
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// requireInotify skips tests that rely on the directory being watched.
func requireInotify(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("inotify is Linux-only; elsewhere only the periodic rescan finds changes")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type harness struct {
	t     *testing.T
	clock *testclock.FakeClock
	d     *ManifestDir
	stop  func()
	// step is added to the fake clock at each poll while waiting, so
	// debounce timers fire (0: the clock is left alone).
	step time.Duration
}

func start(t *testing.T, o Options) *harness {
	t.Helper()
	fc := testclock.NewFakeClock(t0)
	o.Clock = fc
	if o.NodeName == "" {
		o.NodeName = testNode
	}
	o.Logger = testLogger(t)
	d, err := NewManifestDir(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return &harness{t: t, clock: fc, d: d, stop: stop}
}

// next waits (with a deadline) for an update satisfying pred, skipping
// others (intermediate states of a file being written).
func (h *harness) next(what string, pred func(Update) bool) Update {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last *Update
	for time.Now().Before(deadline) {
		select {
		case u, ok := <-h.d.Updates():
			if !ok {
				h.t.Fatalf("updates closed while waiting for %s", what)
			}
			if pred(u) {
				return u
			}
			last = &u
		case <-time.After(5 * time.Millisecond):
			if h.step > 0 {
				h.clock.Step(h.step)
			}
		}
	}
	h.t.Fatalf("no update with %s; last one: %s", what, describe(last))
	return Update{}
}

// waitFor polls cond with a deadline, stepping the clock like next.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if cond() {
			return
		}
		<-time.After(5 * time.Millisecond)
		if h.step > 0 {
			h.clock.Step(h.step)
		}
	}
	h.t.Fatalf("timed out waiting for %s", what)
}

func describe(u *Update) string {
	if u == nil {
		return "none"
	}
	return fmt.Sprintf("pods %s, errors %v", names(*u), u.Errors)
}

func names(u Update) string {
	var n []string
	for _, p := range u.Pods {
		n = append(n, p.Name)
	}
	slices.Sort(n)
	return strings.Join(n, ",")
}

func podsAre(want string) func(Update) bool {
	return func(u Update) bool { return names(u) == want && len(u.Errors) == 0 }
}

func anyUpdate(Update) bool { return true }

func podNamed(u Update, name string) *v1.Pod {
	for _, p := range u.Pods {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func TestManifestDirAddModifyRemove(t *testing.T) {
	requireInotify(t)
	dir := t.TempDir()
	// A one-hour period: within the test's deadlines every update comes
	// from inotify (plus the debounce, stepped by the harness).
	h := start(t, Options{Dir: dir, Period: time.Hour})
	h.step = defaultDebounce

	u := h.next("the initial empty set", anyUpdate)
	if u.Op != Set || len(u.Pods) != 0 || len(u.Errors) != 0 {
		t.Fatalf("initial update = %v %s", u.Op, describe(&u))
	}

	writeFile(t, dir, "web.yaml", podYAML("web", "busybox:1.36"))
	u = h.next("web added", podsAre("web-node1"))
	web1 := u.Pods[0]
	seen, err := time.Parse(time.RFC3339, web1.Annotations[AnnotationSeen])
	if err != nil || seen.Before(t0) || seen.After(h.clock.Now()) {
		t.Errorf("seen annotation %q (%v) not between %v and %v", web1.Annotations[AnnotationSeen], err, t0, h.clock.Now())
	}
	if web1.Annotations[AnnotationSource] != SourceFile || web1.Annotations[AnnotationHash] != string(web1.UID) || web1.Spec.NodeName != testNode {
		t.Errorf("static pod metadata: annotations %v, nodeName %q", web1.Annotations, web1.Spec.NodeName)
	}

	writeFile(t, dir, "web.yaml", podYAML("web", "busybox:1.37"))
	u = h.next("web modified", func(u Update) bool {
		return podsAre("web-node1")(u) && u.Pods[0].UID != web1.UID && u.Pods[0].Spec.Containers[0].Image == "busybox:1.37"
	})
	web2 := u.Pods[0]

	// An atomic writer: a dotfile renamed into place.
	writeFile(t, dir, ".db.json.tmp", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db"},"spec":{"containers":[{"name":"db","image":"busybox"}]}}`)
	if err := os.Rename(filepath.Join(dir, ".db.json.tmp"), filepath.Join(dir, "db.json")); err != nil {
		t.Fatal(err)
	}
	u = h.next("db added", podsAre("db-node1,web-node1"))
	if w := podNamed(u, "web-node1"); w.UID != web2.UID || w.Annotations[AnnotationSeen] != web2.Annotations[AnnotationSeen] {
		t.Errorf("web changed when db was added: uid %s→%s, seen %s→%s", web2.UID, w.UID, web2.Annotations[AnnotationSeen], w.Annotations[AnnotationSeen])
	}

	if err := os.Remove(filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	h.next("web removed", podsAre("db-node1"))
}

func TestManifestDirInvalidNextToValid(t *testing.T) {
	requireInotify(t)
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", podYAML("alpha", "busybox"))
	writeFile(t, dir, "b.yaml", podYAML("beta", `""`))
	h := start(t, Options{Dir: dir, Period: time.Hour})
	h.step = defaultDebounce

	u := h.next("the initial set", anyUpdate)
	if names(u) != "alpha-node1" || len(u.Errors) != 1 {
		t.Fatalf("initial update: %s", describe(&u))
	}
	bad := filepath.Join(dir, "b.yaml")
	if got, want := u.Errors[0].Error(), bad+": spec.containers[0].image: Required value"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	if me, ok := errors.AsType[*ManifestError](u.Errors[0]); !ok || me.File != bad {
		t.Errorf("error is not a *ManifestError for %s: %#v", bad, u.Errors[0])
	}
	alpha := u.Pods[0]

	writeFile(t, dir, "b.yaml", podYAML("beta", "busybox"))
	u = h.next("beta fixed", podsAre("alpha-node1,beta-node1"))
	if a := podNamed(u, "alpha-node1"); a.UID != alpha.UID || a.Annotations[AnnotationSeen] != alpha.Annotations[AnnotationSeen] {
		t.Errorf("alpha disturbed by beta's fix: %v", a.ObjectMeta)
	}
	beta := podNamed(u, "beta-node1")

	writeFile(t, dir, "a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [\n")
	u = h.next("alpha broken", func(u Update) bool {
		return names(u) == "beta-node1" && len(u.Errors) == 1 && strings.HasPrefix(u.Errors[0].Error(), filepath.Join(dir, "a.yaml")+": decode: ")
	})
	if b := u.Pods[0]; b.UID != beta.UID {
		t.Errorf("beta disturbed by alpha's error: %s → %s", beta.UID, b.UID)
	}
}

func TestManifestDirRescanFindsMissedChange(t *testing.T) {
	// The manifest is a symlink to a file outside the directory: the
	// directory's inotify watch never hears of the target's changes, only
	// the periodic rescan finds them.
	dir, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "web.yaml")
	writeFile(t, outside, "web.yaml", podYAML("web", "busybox:1"))
	if err := os.Symlink(target, filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	// A debounce longer than the period: only the ticker can cause a scan.
	h := start(t, Options{Dir: dir, Debounce: time.Hour})
	u := h.next("web", podsAre("web-node1"))
	uid := u.Pods[0].UID

	writeFile(t, outside, "web.yaml", podYAML("web", "busybox:2"))
	h.clock.Step(defaultPeriod)
	u = h.next("web changed by the rescan", func(u Update) bool {
		return podsAre("web-node1")(u) && u.Pods[0].UID != uid
	})
	if img := u.Pods[0].Spec.Containers[0].Image; img != "busybox:2" {
		t.Errorf("image = %q", img)
	}
}

func TestManifestDirMissingDirectory(t *testing.T) {
	requireInotify(t)
	dir := filepath.Join(t.TempDir(), "manifests")
	h := start(t, Options{Dir: dir, Debounce: -1})

	u := h.next("the initial set", anyUpdate)
	if len(u.Pods) != 0 || len(u.Errors) != 1 || !errors.Is(u.Errors[0], fs.ErrNotExist) {
		t.Fatalf("missing directory: %s", describe(&u))
	}

	// Created while not watched: found by the next rescan.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "web.yaml", podYAML("web", "busybox"))
	h.clock.Step(defaultPeriod)
	h.next("web after the rescan", podsAre("web-node1"))

	// Watched from then on: no clock step needed.
	writeFile(t, dir, "db.yaml", podYAML("db", "busybox"))
	h.next("db through inotify", podsAre("db-node1,web-node1"))

	// The directory goes away: its pods go too.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	h.next("directory removed", func(u Update) bool {
		return len(u.Pods) == 0 && len(u.Errors) == 1 && errors.Is(u.Errors[0], fs.ErrNotExist)
	})
}

func TestManifestDirDuplicateNames(t *testing.T) {
	requireInotify(t)
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", podYAML("web", "busybox:a"))
	writeFile(t, dir, "b.yaml", podYAML("web", "busybox:b"))
	h := start(t, Options{Dir: dir, Period: time.Hour})
	h.step = defaultDebounce
	image := func(u Update) string { return u.Pods[0].Spec.Containers[0].Image }
	a, b, zero := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml"), filepath.Join(dir, "0.yaml")
	dupErr := func(file, owner string) string {
		return file + `: metadata.name: Duplicate value: "web-node1": pod default/web-node1 is already defined in ` + owner
	}

	u := h.next("the initial set", anyUpdate)
	if names(u) != "web-node1" || image(u) != "busybox:a" || len(u.Errors) != 1 {
		t.Fatalf("initial update: %s", describe(&u))
	}
	if got, want := u.Errors[0].Error(), dupErr(b, a); got != want {
		t.Errorf("error = %q\nwant    %q", got, want)
	}
	uid := u.Pods[0].UID

	// A new file sorting first does not take the name from its holder.
	writeFile(t, dir, "0.yaml", podYAML("web", "busybox:0"))
	u = h.next("0.yaml rejected", func(u Update) bool { return len(u.Errors) == 2 })
	if names(u) != "web-node1" || u.Pods[0].UID != uid {
		t.Errorf("the pod of a.yaml changed: %s", describe(&u))
	}
	if got := []string{u.Errors[0].Error(), u.Errors[1].Error()}; got[0] != dupErr(zero, a) || got[1] != dupErr(b, a) {
		t.Errorf("errors = %q", got)
	}

	// The holder goes: the first of the others (in name order) takes over.
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	u = h.next("0.yaml takes over", func(u Update) bool { return len(u.Pods) == 1 && image(u) == "busybox:0" })
	if len(u.Errors) != 1 || u.Errors[0].Error() != dupErr(b, zero) {
		t.Errorf("errors = %v", u.Errors)
	}
}

func TestManifestDirSkipsEntries(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", podYAML("web", "busybox"))
	writeFile(t, dir, ".hidden.yaml", podYAML("hidden", "busybox"))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub"), "nested.yaml", podYAML("nested", "busybox"))
	if err := os.Symlink(filepath.Join(dir, "nowhere.yaml"), filepath.Join(dir, "dangling.yaml")); err != nil {
		t.Fatal(err)
	}
	h := start(t, Options{Dir: dir})
	u := h.next("the initial set", anyUpdate)
	if names(u) != "web-node1" {
		t.Errorf("pods = %s, want only web-node1", names(u))
	}
	if len(u.Errors) != 1 || errFile(u.Errors[0]) != filepath.Join(dir, "dangling.yaml") || !errors.Is(u.Errors[0], fs.ErrNotExist) {
		t.Errorf("errors = %v, want one for the dangling symlink", u.Errors)
	}
}

func TestManifestDirUpdatesOnlyOnChange(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", podYAML("web", "busybox"))
	h := start(t, Options{Dir: dir, Debounce: time.Hour})
	u := h.next("web", podsAre("web-node1"))
	if got, want := u.Pods[0].Annotations[AnnotationSeen], t0.Format(time.RFC3339Nano); got != want {
		t.Errorf("seen = %q, want the clock's time %q", got, want)
	}
	for i := int64(2); i <= 4; i++ {
		h.clock.Step(defaultPeriod)
		h.waitFor(fmt.Sprintf("scan %d", i), func() bool { return h.d.scans.Load() >= i })
	}
	// Scans are sequential: once the 5th starts, the 4th has finished.
	h.clock.Step(defaultPeriod)
	h.waitFor("scan 5", func() bool { return h.d.scans.Load() >= 5 })
	if n := h.d.emits.Load(); n != 1 {
		t.Errorf("%d updates sent for an unchanged directory, want 1", n)
	}
	select {
	case u := <-h.d.Updates():
		t.Errorf("unexpected update %s", describe(&u))
	default:
	}
}

func TestManifestDirLatestUpdateWins(t *testing.T) {
	dir := t.TempDir()
	d, err := NewManifestDir(Options{Dir: dir, NodeName: testNode, Clock: testclock.NewFakeClock(t0), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Without Run: scan by hand, nobody reading.
	writeFile(t, dir, "a.yaml", podYAML("a", "busybox"))
	d.sync()
	writeFile(t, dir, "b.yaml", podYAML("b", "busybox"))
	d.sync()
	if u := <-d.Updates(); names(u) != "a-node1,b-node1" {
		t.Errorf("pending update = %s, want the latest (a and b)", describe(&u))
	}
	select {
	case u := <-d.Updates():
		t.Errorf("a second, stale update was pending: %s", describe(&u))
	default:
	}
}

func TestManifestDirRunStops(t *testing.T) {
	h := start(t, Options{Dir: t.TempDir()})
	h.next("the initial set", anyUpdate)
	h.stop()
	if _, ok := <-h.d.Updates(); ok {
		t.Error("Updates not closed after Run returned")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.d.Run(context.Background()) // a second Run returns at once
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("second Run did not return")
	}
}

func TestNewManifestDir(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"ok", Options{Dir: "manifests", NodeName: "n"}, true},
		{"no dir", Options{NodeName: "n"}, false},
		{"no node", Options{Dir: "/etc/kubernetes/manifests"}, false},
		{"node name not a DNS subdomain", Options{Dir: "m", NodeName: "node_1"}, false},
		{"upper case node name", Options{Dir: "m", NodeName: "Node-1"}, true},
	}
	for _, tt := range tests {
		d, err := NewManifestDir(tt.o)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
		if err == nil && (!filepath.IsAbs(d.dir) || d.period != defaultPeriod || d.debounce != defaultDebounce) {
			t.Errorf("%s: dir %q period %v debounce %v", tt.name, d.dir, d.period, d.debounce)
		}
	}
}
