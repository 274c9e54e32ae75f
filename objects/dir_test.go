package objects

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

func TestNewDirErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	if _, err := NewDir(DirOptions{Path: missing, Logger: quiet}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing directory: %v", err)
	}
	writeFile(t, dir, "file", "")
	if _, err := NewDir(DirOptions{Path: filepath.Join(dir, "file"), Logger: quiet}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file: %v", err)
	}
	if _, err := NewDir(DirOptions{Logger: quiet}); err == nil {
		t.Error("no path: no error")
	}
}

// Several documents in a file, Lists, JSON, what is not read.
func TestDirFormats(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "app.yaml", "---\n# a comment only\n---\n"+configMap("a", "k", "a")+
		"---\n\n---\n"+secret("s", "password", "p")+"---\n# trailing\n...\n")
	writeFile(t, dir, "list.yml", `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b, namespace: shop}
  data: {k: b}
- apiVersion: v1
  kind: Secret
  metadata: {name: t, namespace: shop}
  type: kubernetes.io/basic-auth
  data: {username: dXNlcg==}
`)
	writeFile(t, dir, "c.json", `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "c"}}
{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"}, "binaryData": {"k": "AAE="}}`)
	writeFile(t, dir, "inline.yaml", "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: inline}, data: {k: inline}}\n")
	writeFile(t, dir, ".hidden.yaml", configMap("hidden"))
	writeFile(t, dir, "notes.txt", configMap("txt"))
	writeFile(t, dir, "app.yaml~", configMap("backup"))
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub.yaml"), "d.yaml", configMap("sub"))
	other := t.TempDir()
	writeFile(t, other, "l.yaml", configMap("linked", "k", "l"))
	if err := os.Symlink(filepath.Join(other, "l.yaml"), filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(other, "none.yaml"), filepath.Join(dir, "dangling.yaml")); err != nil {
		t.Fatal(err)
	}

	d := newDir(t, dir, 0)
	if errs := d.Errors(); len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	for _, c := range []struct{ ns, name, want string }{
		{"default", "a", "a"}, {"shop", "b", "b"}, {"default", "c", "c"}, {"default", "inline", "inline"},
		{"default", "linked", "l"}, {"", "a", "a"},
	} {
		if got := cmData(t, d, c.ns, c.name, "k"); got != c.want {
			t.Errorf("ConfigMap %s/%s: k = %q, want %q", c.ns, c.name, got, c.want)
		}
	}
	cm, err := d.ConfigMap(context.Background(), "default", "c2")
	if err != nil || string(cm.BinaryData["k"]) != "\x00\x01" {
		t.Errorf("c2: %v %v", cm, err)
	}
	for _, name := range []string{"hidden", "txt", "backup", "sub"} {
		if got := cmData(t, d, "default", name, "k"); got != "<none>" {
			t.Errorf("ConfigMap %s served", name)
		}
	}
	if got := secData(t, d, "default", "s", "password"); got != "p" {
		t.Errorf("Secret s: %q", got)
	}
	sec, err := d.Secret(context.Background(), "shop", "t")
	if err != nil || string(sec.Data["username"]) != "user" || sec.Type != v1.SecretTypeBasicAuth {
		t.Errorf("Secret shop/t: %v %v", sec, err)
	}
	if cms, secs := d.store.counts(); cms != 6 || secs != 2 {
		t.Errorf("%d ConfigMaps, %d Secrets", cms, secs)
	}
}

// stringData is merged over data, the type defaults to Opaque; the metadata
// is the source's.
func TestDirSecret(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "s.yaml", `apiVersion: v1
kind: Secret
metadata:
  name: db
  uid: 0b7c1c8e-0000-0000-0000-000000000000
  resourceVersion: "12345"
  creationTimestamp: "2020-01-01T00:00:00Z"
  labels: {app: db}
data:
  user: YWRtaW4=        # admin
  password: b2xk        # old
stringData:
  password: new
  host: db.local
`)
	d := newDir(t, dir, 0)
	sec, err := d.Secret(context.Background(), "default", "db")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"user": "admin", "password": "new", "host": "db.local"}
	got := map[string]string{}
	for k, v := range sec.Data {
		got[k] = string(v)
	}
	if !mapsEqual(got, want) || sec.StringData != nil || sec.Type != v1.SecretTypeOpaque {
		t.Errorf("data %v stringData %v type %q", got, sec.StringData, sec.Type)
	}
	if sec.UID != uidOf(secRef("db")) || sec.ResourceVersion == "12345" || sec.CreationTimestamp.Year() == 2020 ||
		sec.APIVersion != "v1" || sec.Kind != "Secret" || sec.Labels["app"] != "db" {
		t.Errorf("metadata %+v %+v", sec.TypeMeta, sec.ObjectMeta)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// The same object in two files: the first file's, an error naming both;
// twice in one file: the first.
func TestDirDuplicates(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "b.yaml", configMap("web", "from", "b")+"---\n"+configMap("other", "from", "b"))
	writeFile(t, dir, "a.yaml", configMap("web", "from", "a"))
	writeFile(t, dir, "c.yaml", secret("x", "num", "1")+"---\n"+secret("x", "num", "2"))
	d := newDir(t, dir, 0)
	if got := cmData(t, d, "default", "web", "from"); got != "a" {
		t.Errorf("web from %q, want a", got)
	}
	if got := secData(t, d, "default", "x", "num"); got != "1" {
		t.Errorf("x: n = %q, want 1", got)
	}
	want := []string{
		"b.yaml: document 1: ConfigMap default/web: also defined in a.yaml, which is served",
		"c.yaml: document 2: Secret default/x: defined more than once in this file: the first definition is served",
	}
	if got := errorTexts(d, dir); !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	ch := subscribe(t, d)
	if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	mustRescan(t, d)
	waitRef(t, ch, cmRef("web"))
	if got := cmData(t, d, "default", "web", "from"); got != "b" {
		t.Errorf("after a.yaml removed: web from %q, want b", got)
	}
	if got := errorTexts(d, dir); len(got) != 1 {
		t.Errorf("errors: %v", got)
	}
}

// An invalid document keeps the last valid version of its object from its
// file; the file's other documents are served; an error that cannot be tied
// to one object keeps all.
func TestDirLastValidKept(t *testing.T) {
	dir := t.TempDir()
	doc := func(parts ...string) string { return strings.Join(parts, "---\n") }
	writeFile(t, dir, "app.yaml", doc(configMap("web", "v", "1"), secret("db", "password", "1"), configMap("other", "v", "1")))
	d := newDir(t, dir, 0)
	db1, _ := d.Secret(context.Background(), "default", "db")

	// web changes, db gets an invalid key, other is removed.
	writeFile(t, dir, "app.yaml", doc(configMap("web", "v", "2"), secret("db", "password", "2", "bad key", "x")))
	mustRescan(t, d)
	if got := cmData(t, d, "default", "web", "v"); got != "2" {
		t.Errorf("web: %q, want 2", got)
	}
	if db, _ := d.Secret(context.Background(), "default", "db"); db != db1 {
		t.Errorf("db: not the last valid version: %v", db)
	}
	if got := cmData(t, d, "default", "other", "v"); got != "<none>" {
		t.Errorf("other: %q, want deleted", got)
	}
	if got := errorTexts(d, dir); len(got) != 1 || !strings.HasPrefix(got[0], `app.yaml: document 2: Secret default/db: stringData[bad key]: Invalid value`) {
		t.Errorf("errors: %v", got)
	}

	// A syntax error, a bad name: nothing can be told, everything is kept.
	for _, broken := range []string{
		doc(configMap("web", "v", "3"), "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n stringData: {}\n"),
		doc(configMap("web", "v", "3"), secret("DB", "password", "3")),
	} {
		writeFile(t, dir, "app.yaml", broken)
		mustRescan(t, d)
		if got := cmData(t, d, "default", "web", "v"); got != "3" {
			t.Errorf("web: %q, want 3", got)
		}
		if db, _ := d.Secret(context.Background(), "default", "db"); db != db1 {
			t.Errorf("db: not the last valid version: %v", db)
		}
		if got := d.Errors(); len(got) != 1 {
			t.Errorf("errors: %v", got)
		}
	}

	// Fixed.
	writeFile(t, dir, "app.yaml", doc(configMap("web", "v", "4"), secret("db", "password", "4")))
	mustRescan(t, d)
	if got := secData(t, d, "default", "db", "password"); got != "4" || cmData(t, d, "default", "web", "v") != "4" {
		t.Errorf("db: %q", got)
	}
	if got := d.Errors(); len(got) != 0 {
		t.Errorf("errors: %v", got)
	}

	// An unreadable file keeps its objects too (a directory in its place
	// cannot be read; root reads any file).
	if err := os.Remove(filepath.Join(dir, "app.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("app.yaml", filepath.Join(dir, "loop.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "loop.yaml"), filepath.Join(dir, "app.yaml")); err != nil {
		t.Fatal(err) // app.yaml -> app.yaml: a symlink loop
	}
	mustRescan(t, d)
	if got := errorTexts(d, dir); len(got) != 1 || !strings.Contains(got[0], "too many levels of symbolic links") {
		t.Errorf("errors: %v", got)
	}
	if got := secData(t, d, "default", "db", "password"); got != "4" {
		t.Errorf("db: %q", got)
	}

	// A new file invalid from the start serves nothing.
	writeFile(t, dir, "new.yaml", configMap("fresh", "bad/key", "v"))
	mustRescan(t, d)
	if got := cmData(t, d, "default", "fresh", "k"); got != "<none>" {
		t.Errorf("fresh served")
	}
}

// Run sees changes through the watch (the period is far away): an object
// changed, added, deleted with its file; the UID and creationTimestamp stay,
// the resourceVersion changes.
func TestDirWatch(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", configMap("web", "v", "1"))
	writeFile(t, dir, "db.yaml", secret("db", "password", "1"))
	d := newDir(t, dir, time.Hour)
	web1, _ := d.ConfigMap(context.Background(), "default", "web")
	ch := subscribe(t, d)
	run(t, d)

	writeFile(t, dir, "web.yaml", configMap("web", "v", "2"))
	waitRef(t, ch, cmRef("web"))
	web2, _ := d.ConfigMap(context.Background(), "default", "web")
	if web2.Data["v"] != "2" || web2.UID != web1.UID || !web2.CreationTimestamp.Equal(&web1.CreationTimestamp) ||
		web2.ResourceVersion == web1.ResourceVersion {
		t.Errorf("web after change: %+v\nbefore: %+v", web2.ObjectMeta, web1.ObjectMeta)
	}

	// Written in place, the same size, at once: the coarse modification
	// time may not change, the content must still be seen.
	for i := 3; i <= 5; i++ {
		if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(configMap("web", "v", strconv.Itoa(i))), 0o644); err != nil {
			t.Fatal(err)
		}
		waitRef(t, ch, cmRef("web"))
		waitUntil(t, "web v"+strconv.Itoa(i), func() bool { return cmData(t, d, "default", "web", "v") == strconv.Itoa(i) })
	}

	writeFile(t, dir, "new.yaml", configMap("new", "v", "1"))
	waitRef(t, ch, cmRef("new"))

	if err := os.Remove(filepath.Join(dir, "db.yaml")); err != nil {
		t.Fatal(err)
	}
	waitRef(t, ch, secRef("db"))
	if _, err := d.Secret(context.Background(), "default", "db"); !apierrors.IsNotFound(err) {
		t.Errorf("db after its file was deleted: %v", err)
	}
	if got := cmData(t, d, "default", "web", "v"); got != "5" {
		t.Errorf("web: %q", got)
	}
}

// A file found empty right after it was modified is being written, most
// likely: its objects are kept; when it stays empty they are deleted.
func TestDirEmptiedFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", configMap("a", "v", "1"))
	d := newDir(t, dir, time.Hour)
	if err := os.Truncate(filepath.Join(dir, "a.yaml"), 0); err != nil {
		t.Fatal(err)
	}
	mustRescan(t, d)
	fi, err := os.Stat(filepath.Join(dir, "a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(fi.ModTime()) < racyWindow { // else this machine stalled
		if got := cmData(t, d, "", "a", "v"); got != "1" {
			t.Errorf("a, just emptied: %q, want kept", got)
		}
	}
	ch := subscribe(t, d)
	run(t, d)
	waitRef(t, ch, cmRef("a"))
	if got := cmData(t, d, "", "a", "v"); got != "<none>" {
		t.Errorf("a, emptied: %q, want deleted", got)
	}
	if errs := d.Errors(); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

// A file rewritten with the same content (comments, order) changes nothing:
// no notification, the same object.
func TestDirSameContentNoNotification(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", configMap("a", "k1", "1", "k2", "2"))
	writeFile(t, dir, "b.yaml", configMap("b", "v", "1"))
	d := newDir(t, dir, time.Hour)
	a1, _ := d.ConfigMap(context.Background(), "default", "a")
	ch := subscribe(t, d)
	run(t, d)
	writeFile(t, dir, "a.yaml", "# reformatted\n"+configMap("a", "k2", "2", "k1", "1"))
	writeFile(t, dir, "b.yaml", configMap("b", "v", "2"))
	// The change to a.yaml is handled before or with b.yaml's.
	select {
	case r := <-ch:
		if r != cmRef("b") {
			t.Errorf("notification for %v", r)
		}
	case <-time.After(timeout):
		t.Fatal("no notification")
	}
	if a, _ := d.ConfigMap(context.Background(), "default", "a"); a != a1 {
		t.Errorf("a replaced: %v", a)
	}
}

// The directory deleted and created again: meanwhile everything is kept and
// the error reported; then the periodic rescan finds it, watches it again.
func TestDirRecreated(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "objects")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "web.yaml", configMap("web", "v", "1"))
	d := newDir(t, dir, 20*time.Millisecond)
	ch := subscribe(t, d)
	run(t, d)

	// Gone at once (os.RemoveAll would delete the files first: a rescan
	// could see the directory empty).
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir + ".old"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the directory error", func() bool {
		errs := d.Errors()
		return len(errs) == 1 && strings.Contains(errs[0].Error(), dir+": reading the directory: no such file or directory")
	})
	if got := cmData(t, d, "default", "web", "v"); got != "1" {
		t.Errorf("web while the directory is gone: %q", got)
	}

	// Created whole, again.
	if err := os.Mkdir(dir+".new", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir+".new", "web.yaml", configMap("web", "v", "2"))
	if err := os.Rename(dir+".new", dir); err != nil {
		t.Fatal(err)
	}
	waitRef(t, ch, cmRef("web"))
	if got := cmData(t, d, "default", "web", "v"); got != "2" {
		t.Errorf("web: %q", got)
	}
	if errs := d.Errors(); len(errs) != 0 { // published before the objects
		t.Errorf("errors: %v", errs)
	}
	writeFile(t, dir, "db.yaml", secret("db", "password", "1"))
	waitRef(t, ch, secRef("db"))
}

// Each distinct error is logged once while it lasts.
func TestDirErrorsLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", configMap("web", "bad/key", "v"))
	logs := &capture{}
	d, err := NewDir(DirOptions{Path: dir, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustRescan(t, d) // the file is fresh: it is read again each time
	}
	if w := logs.warnings(); len(w) != 1 || !strings.Contains(w[0], "a.yaml: ConfigMap default/web: data[bad/key]: Invalid value") {
		t.Fatalf("warnings: %q", w)
	}
	writeFile(t, dir, "a.yaml", configMap("web", "bad/key2", "v"))
	mustRescan(t, d)
	mustRescan(t, d)
	if w := logs.warnings(); len(w) != 2 || !strings.Contains(w[1], "bad/key2") {
		t.Fatalf("warnings: %q", w)
	}
	writeFile(t, dir, "a.yaml", configMap("web"))
	mustRescan(t, d)
	writeFile(t, dir, "a.yaml", configMap("web", "bad/key", "v"))
	mustRescan(t, d)
	if w := logs.warnings(); len(w) != 3 {
		t.Fatalf("warnings after the error came back: %q", w)
	}
}

// A rescan reads only the files whose size, modification time or inode
// changed.
func TestDirRescanReadsChangedFilesOnly(t *testing.T) {
	dir := t.TempDir()
	past := time.Now().Add(-time.Hour)
	write := func(name, content string, mtime time.Time) {
		writeFile(t, dir, name, content)
		if err := os.Chtimes(filepath.Join(dir, name), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", configMap("a", "v", "1"), past)
	write("b.yaml", configMap("b", "v", "1"), past)
	write("c.yaml", configMap("c", "v", "1"), past)
	d := newDir(t, dir, 0)
	reads := func() int {
		d.scanMu.Lock()
		defer d.scanMu.Unlock()
		return d.reads
	}
	if n := reads(); n != 3 {
		t.Fatalf("%d reads", n)
	}
	mustRescan(t, d)
	if n := reads(); n != 3 {
		t.Errorf("unchanged directory: %d reads, want 3", n)
	}
	write("b.yaml", configMap("b", "v", "2"), past.Add(time.Minute)) // same size
	mustRescan(t, d)
	if n := reads(); n != 4 {
		t.Errorf("b modified: %d reads, want 4", n)
	}
	write("c.yaml", configMap("c", "v", "3"), past) // same size and time, a new inode
	mustRescan(t, d)
	if n := reads(); n != 5 {
		t.Errorf("c replaced: %d reads, want 5", n)
	}
	if cmData(t, d, "", "b", "v") != "2" || cmData(t, d, "", "c", "v") != "3" {
		t.Error("changes not served")
	}
}

// Lookups while files change, under -race: every lookup sees a whole
// version.
func TestDirConcurrentLookups(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "app.yaml", configMap("web", "one", "0", "two", "0")+"---\n"+secret("db", "num", "0"))
	d := newDir(t, dir, 10*time.Millisecond)
	ch := subscribe(t, d)
	run(t, d)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				cm, err := d.ConfigMap(ctx, "default", "web")
				if err != nil {
					t.Error(err)
					return
				}
				if cm.Data["one"] != cm.Data["two"] {
					t.Errorf("mixed versions: %v", cm.Data)
					return
				}
				if _, err := d.Secret(ctx, "default", "db"); err != nil {
					t.Error(err)
					return
				}
				_ = d.Errors()
			}
		})
	}
	const versions = 50
	for i := 1; i <= versions; i++ {
		n := strconv.Itoa(i)
		writeFile(t, dir, "app.yaml", configMap("web", "one", n, "two", n)+"---\n"+secret("db", "num", n))
	}
	last := strconv.Itoa(versions)
	for cmData(t, d, "", "web", "one") != last {
		waitRef(t, ch, cmRef("web"))
	}
	stop()
	wg.Wait()
	if got := secData(t, d, "", "db", "num"); got != last {
		t.Errorf("db: %q", got)
	}
}

func TestStatic(t *testing.T) {
	ctx := context.Background()
	s := NewStatic()
	ch := subscribe(t, s)
	next := func() Ref {
		select {
		case r := <-ch:
			return r
		default:
			return Ref{}
		}
	}

	in := &v1.ConfigMap{}
	in.Name = "web"
	in.Data = map[string]string{"v": "1"}
	s.SetConfigMap(in)
	if r := next(); r != cmRef("web") {
		t.Errorf("notification %v", r)
	}
	in.Data["v"] = "changed by the caller"
	web1, err := s.ConfigMap(ctx, "default", "web")
	if err != nil || web1.Data["v"] != "1" || web1.Namespace != "default" || web1.UID != uidOf(cmRef("web")) ||
		web1.ResourceVersion == "" || web1.CreationTimestamp.IsZero() {
		t.Fatalf("web: %+v %v", web1, err)
	}

	// The same content: nothing.
	same := web1.DeepCopy()
	same.ResourceVersion = ""
	s.SetConfigMap(same)
	if r := next(); r != (Ref{}) {
		t.Errorf("notification %v for the same content", r)
	}
	if web, _ := s.ConfigMap(ctx, "", "web"); web != web1 {
		t.Errorf("replaced by the same content")
	}

	// Changed: a new resourceVersion, the same UID and creation time.
	changed := web1.DeepCopy()
	changed.Labels = map[string]string{"app": "web"}
	s.SetConfigMap(changed)
	if r := next(); r != cmRef("web") {
		t.Errorf("notification %v", r)
	}
	web2, _ := s.ConfigMap(ctx, "default", "web")
	if web2.ResourceVersion == web1.ResourceVersion || web2.UID != web1.UID || !web2.CreationTimestamp.Equal(&web1.CreationTimestamp) {
		t.Errorf("web after change: %+v", web2.ObjectMeta)
	}

	// Secrets: stringData merged, type defaulted.
	sec := &v1.Secret{Data: map[string][]byte{"a": []byte("1"), "b": []byte("1")}, StringData: map[string]string{"b": "2", "c": "3"}}
	sec.Name, sec.Namespace = "db", "shop"
	s.SetSecret(sec)
	if r := next(); r != (Ref{KindSecret, "shop", "db"}) {
		t.Errorf("notification %v", r)
	}
	got, err := s.Secret(ctx, "shop", "db")
	if err != nil || string(got.Data["a"]) != "1" || string(got.Data["b"]) != "2" || string(got.Data["c"]) != "3" ||
		got.StringData != nil || got.Type != v1.SecretTypeOpaque {
		t.Errorf("secret: %+v %v", got, err)
	}
	if len(sec.StringData) != 2 || len(sec.Data) != 2 {
		t.Errorf("the caller's secret was modified: %+v", sec)
	}

	// Delete.
	if !s.Delete(Ref{KindSecret, "shop", "db"}) {
		t.Error("Delete: false")
	}
	if r := next(); r != (Ref{KindSecret, "shop", "db"}) {
		t.Errorf("notification %v", r)
	}
	if _, err := s.Secret(ctx, "shop", "db"); !apierrors.IsNotFound(err) {
		t.Errorf("deleted secret: %v", err)
	}
	if s.Delete(Ref{KindSecret, "shop", "db"}) || s.Delete(Ref{KindConfigMap, "shop", "web"}) {
		t.Error("Delete of nothing: true")
	}
	if r := next(); r != (Ref{}) {
		t.Errorf("notification %v for nothing deleted", r)
	}
	if _, err := s.ConfigMap(ctx, "shop", "web"); !apierrors.IsNotFound(err) || err.Error() != `configmaps "web" not found` {
		t.Errorf("missing ConfigMap: %v", err)
	}
}

// A subscriber may look the object up (no lock is held) and is not called
// after cancel.
func TestSubscribe(t *testing.T) {
	s := NewStatic()
	var seen []string
	cancel := s.Subscribe(func(r Ref) {
		cm, err := s.ConfigMap(context.Background(), r.Namespace, r.Name)
		if err != nil {
			seen = append(seen, "deleted")
			return
		}
		seen = append(seen, cm.Data["v"])
	})
	calls := 0
	cancel2 := s.Subscribe(func(Ref) { calls++ })
	defer cancel2()
	for i := range 3 {
		cm := &v1.ConfigMap{Data: map[string]string{"v": fmt.Sprint(i)}}
		cm.Name = "web"
		s.SetConfigMap(cm)
	}
	s.Delete(cmRef("web"))
	cancel()
	cancel() // idempotent
	cm := &v1.ConfigMap{}
	cm.Name = "web"
	s.SetConfigMap(cm)
	if want := []string{"0", "1", "2", "deleted"}; !slices.Equal(seen, want) {
		t.Errorf("seen %v, want %v", seen, want)
	}
	if calls != 5 {
		t.Errorf("the other subscriber: %d calls, want 5", calls)
	}
}

func TestUID(t *testing.T) {
	a, b := uidOf(cmRef("web")), uidOf(secRef("web"))
	if a == b || a != uidOf(cmRef("web")) || len(a) != 36 || a[14] != '8' {
		t.Errorf("UIDs %s %s", a, b)
	}
}

func TestNotFound(t *testing.T) {
	d := newDir(t, t.TempDir(), 0)
	_, err := d.Secret(context.Background(), "default", "none")
	var status *apierrors.StatusError
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) || err.Error() != `secrets "none" not found` {
		t.Errorf("%v", err)
	}
}

func BenchmarkConfigMapLookup(b *testing.B) {
	dir := b.TempDir()
	var f strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&f, "---\n%s", configMap(fmt.Sprintf("cm-%d", i), "k", "v"))
	}
	writeFile(b, dir, "all.yaml", f.String())
	d := newDir(b, dir, 0)
	ctx := context.Background()
	for b.Loop() {
		if _, err := d.ConfigMap(ctx, "default", "cm-500"); err != nil {
			b.Fatal(err)
		}
	}
}
