//go:build linux

package image

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nodekit-dev/nodekit/cri/layer"
)

// sharedImages are two images sharing a base layer, with different top layers.
func sharedImages(t *testing.T) (base *testLayer, a, b v1.Image) {
	base = newLayer(t, types.OCILayer, map[string]string{"etc/": "", "etc/os-release": "ID=nodekit\n"})
	a = newImage(t, v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/web"}, WorkingDir: "/srv", User: "1000:1000",
		Labels: map[string]string{"app": "web"}, StopSignal: "SIGQUIT"},
		nil, base, newLayer(t, types.OCILayer, map[string]string{"bin/web": "web"}))
	b = newImage(t, v1.Config{Entrypoint: []string{"/bin/db"}}, nil, base, newLayer(t, types.OCILayer, map[string]string{"bin/db": "db"}))
	return base, a, b
}

func TestImportOCILayout(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	base, a, b := sharedImages(t)
	unnamed := newImage(t, v1.Config{}, nil, newLayer(t, types.OCILayer, map[string]string{"x": "x"}))
	archive := ociTar(t,
		ociEntry{img: a, ann: map[string]string{annotationContainerdName: "nodekit.local/web:v1", annotationRefName: "v1"}},
		ociEntry{img: b, ann: map[string]string{annotationRefName: "busybox:1.36"}},
		ociEntry{img: unnamed, ann: map[string]string{annotationRefName: "latest"}}, // a bare tag is no name
	)
	imgs, err := s.Import(context.Background(), streamOnly{archive})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 3 {
		t.Fatalf("imported %d images, want 3", len(imgs))
	}

	idA, idB := imageID(t, a), imageID(t, b)
	digA := "nodekit.local/web@" + manifestDigest(t, a)
	for _, ref := range []string{"nodekit.local/web:v1", idA, strings.TrimPrefix(idA, "sha256:"), idA[7:19], digA, "nodekit.local/web:v1@" + manifestDigest(t, a)} {
		if got := mustGet(t, s, ref); got.ID != idA {
			t.Errorf("Get(%q).ID = %s, want %s", ref, got.ID, idA)
		}
	}
	for _, ref := range []string{"busybox:1.36", "docker.io/library/busybox:1.36", "index.docker.io/library/busybox:1.36", idB} {
		if got := mustGet(t, s, ref); got.ID != idB {
			t.Errorf("Get(%q).ID = %s, want %s", ref, got.ID, idB)
		}
	}
	for _, ref := range []string{"busybox", "nodekit.local/web:v2", "sha256:" + strings.Repeat("0", 64), "nodekit.local/web@sha256:" + strings.Repeat("1", 64)} {
		if _, err := s.Get(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", ref, err)
		}
	}

	gotA := mustGet(t, s, idA)
	if !slices.Equal(gotA.RepoTags, []string{"nodekit.local/web:v1"}) || !slices.Equal(gotA.RepoDigests, []string{digA}) {
		t.Errorf("tags %v digests %v", gotA.RepoTags, gotA.RepoDigests)
	}
	if c := gotA.Config; c.User != "1000:1000" || c.WorkingDir != "/srv" || !slices.Equal(c.Cmd, []string{"/bin/web"}) ||
		!slices.Equal(c.Env, []string{"PATH=/bin"}) || c.Labels["app"] != "web" || c.StopSignal != "SIGQUIT" {
		t.Errorf("config = %+v", c)
	}
	if !slices.Equal(gotA.Layers, diffIDs(t, a)) {
		t.Errorf("layers = %v, want %v", gotA.Layers, diffIDs(t, a))
	}
	gotU := mustGet(t, s, imageID(t, unnamed))
	if len(gotU.RepoTags)+len(gotU.RepoDigests) != 0 {
		t.Errorf("unnamed image got names %v %v", gotU.RepoTags, gotU.RepoDigests)
	}

	dirs, err := s.LayerDirs(gotA)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "layers", base.diffID.Hex, "fs"); dirs[0] != want {
		t.Errorf("LayerDirs[0] = %s, want %s", dirs[0], want)
	}
	if b, err := os.ReadFile(filepath.Join(dirs[1], "bin/web")); err != nil || string(b) != "web" {
		t.Errorf("top layer bin/web = %q, %v", b, err)
	}
	// The shared base is unpacked once: 4 distinct layers for 5 references.
	if got := dirNames(t, filepath.Join(root, "layers")); len(got) != 4 {
		t.Errorf("layers/ holds %v, want 4 layers", got)
	}
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Mountpoint != root || u.UsedBytes == 0 || u.InodesUsed < 4*2 {
		t.Errorf("Usage = %+v", u)
	}
	if gotA.Size == 0 || gotA.Size >= u.UsedBytes {
		t.Errorf("image size %d, store usage %d", gotA.Size, u.UsedBytes)
	}
	list, err := s.List()
	if err != nil || len(list) != 3 {
		t.Fatalf("List = %d images, %v", len(list), err)
	}
	if left := dirNames(t, filepath.Join(root, "tmp")); len(left) != 0 {
		t.Errorf("tmp/ not cleaned: %v", left)
	}
}

func TestImportDockerArchiveRetags(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	base, a, b := sharedImages(t)
	imgs, err := s.Import(context.Background(), dockerTar(t, map[string]v1.Image{
		"app:latest":                  a,
		"registry.example.com/app:v1": a,
		"db:1":                        b,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 {
		t.Fatalf("imported %d images", len(imgs))
	}
	gotA := mustGet(t, s, "app")
	if want := []string{"docker.io/library/app:latest", "registry.example.com/app:v1"}; !slices.Equal(sorted(gotA.RepoTags), want) {
		t.Errorf("RepoTags = %v, want %v", gotA.RepoTags, want)
	}
	if gotA.ID != imageID(t, a) || !slices.Equal(gotA.Layers, diffIDs(t, a)) {
		t.Errorf("image = %+v", gotA)
	}
	baseFS := filepath.Join(root, "layers", base.diffID.Hex, "fs")
	ino := inode(t, baseFS)

	// A new image takes app:latest; the old one keeps its other tag. Then db:1 moves too and
	// image b, left with no names, stays listed.
	c := newImage(t, v1.Config{Cmd: []string{"new"}}, nil, base, newLayer(t, types.OCIUncompressedLayer, map[string]string{"new": "n"}))
	if _, err := s.Import(context.Background(), dockerTar(t, map[string]v1.Image{"app:latest": c, "db:1": c})); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "app:latest"); got.ID != imageID(t, c) {
		t.Errorf("app:latest = %s, want the new image", got.ID)
	}
	if got := mustGet(t, s, imageID(t, a)); !slices.Equal(got.RepoTags, []string{"registry.example.com/app:v1"}) {
		t.Errorf("old image tags = %v", got.RepoTags)
	}
	if got := mustGet(t, s, imageID(t, b)); len(got.RepoTags) != 0 {
		t.Errorf("untagged image tags = %v", got.RepoTags)
	}
	if list, _ := s.List(); len(list) != 3 {
		t.Errorf("List has %d images, want 3", len(list))
	}
	if inode(t, baseFS) != ino {
		t.Error("shared base layer was unpacked again")
	}
}

func TestRemoveAndGC(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := context.Background()
	base, a, b := sharedImages(t)
	if _, err := s.Import(ctx, dockerTar(t, map[string]v1.Image{"a:1": a, "a:2": a, "b:1": b})); err != nil {
		t.Fatal(err)
	}
	layerDirs := func() []string { return dirNames(t, filepath.Join(root, "layers")) }
	usage := func() uint64 {
		u, err := s.Usage()
		if err != nil {
			t.Fatal(err)
		}
		return u.UsedBytes
	}
	full := usage()
	topA := diffIDs(t, a)[1]

	if err := s.Remove("a:1"); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"a:1", "a:2", imageID(t, a)} {
		if _, err := s.Get(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("after Remove, Get(%q) = %v", ref, err)
		}
	}
	for _, ref := range []string{"a:1", imageID(t, a), "never-was"} {
		if err := s.Remove(ref); err != nil {
			t.Errorf("second Remove(%q) = %v, want nil", ref, err)
		}
	}
	if len(layerDirs()) != 3 || usage() != full {
		t.Fatalf("Remove deleted layers: %v", layerDirs())
	}

	// a's top layer goes, unless a container still uses it.
	inUse := func(d string) bool { return d == topA }
	if err := s.GC(ctx, inUse); err != nil {
		t.Fatal(err)
	}
	if len(layerDirs()) != 3 {
		t.Errorf("GC removed an in-use layer: %v", layerDirs())
	}
	if err := s.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := layerDirs(); len(got) != 2 || !slices.Contains(got, base.diffID.Hex) {
		t.Errorf("after GC layers = %v, want base and b's top", got)
	}
	if u := usage(); u >= full || u == 0 {
		t.Errorf("usage %d after GC, was %d", u, full)
	}
	if blobs := dirNames(t, filepath.Join(root, "blobs", "sha256")); len(blobs) != 1 || "sha256:"+blobs[0] != imageID(t, b) {
		t.Errorf("blobs after GC = %v, want b's config only", blobs)
	}
	if _, err := s.LayerDirs(mustGet(t, s, "b:1")); err != nil {
		t.Errorf("b lost a layer: %v", err)
	}

	if err := s.Remove("b:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.GC(ctx, func(d string) bool { return d == base.diffID.String() }); err != nil {
		t.Fatal(err)
	}
	if got := layerDirs(); !slices.Equal(got, []string{base.diffID.Hex}) {
		t.Errorf("layers = %v, want only the in-use base", got)
	}
	if err := s.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := layerDirs(); len(got) != 0 || usage() != 0 {
		t.Errorf("layers = %v usage %d after final GC", got, usage())
	}
}

func TestTwoStoresShareRoot(t *testing.T) {
	root := t.TempDir()
	daemon, importer := newStore(t, root), newStore(t, root)
	if list, _ := daemon.List(); len(list) != 0 {
		t.Fatalf("fresh store lists %v", list)
	}
	_, a, _ := sharedImages(t)
	if _, err := importer.Import(context.Background(), dockerTar(t, map[string]v1.Image{"nodekit.local/web:latest": a})); err != nil {
		t.Fatal(err)
	}
	list, err := daemon.List()
	if err != nil || len(list) != 1 || list[0].RepoTags[0] != "nodekit.local/web:latest" {
		t.Fatalf("daemon List = %+v, %v", list, err)
	}
	if u, _ := daemon.Usage(); u.UsedBytes == 0 {
		t.Error("daemon Usage did not see the imported layers")
	}
	if err := daemon.Remove("nodekit.local/web"); err != nil {
		t.Fatal(err)
	}
	if _, err := importer.Get("nodekit.local/web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("importer still sees the removed image: %v", err)
	}
}

// A layer unpacked by a pull in progress (held by its lease) survives GC from another
// Store; a work directory whose owner died is cleared.
func TestGCRespectsLeases(t *testing.T) {
	root := t.TempDir()
	puller, gc := newStore(t, root), newStore(t, root)
	ctx := context.Background()
	l := newLayer(t, types.OCILayer, map[string]string{"f": "x"})
	w, err := puller.newWork()
	if err != nil {
		t.Fatal(err)
	}
	src := layerSource{diffID: l.diffID, blob: sha(l.blob), mediaType: string(l.mt), open: func(context.Context) (io.ReadCloser, error) { return l.Compressed() }}
	if _, err := puller.ensureLayer(ctx, w, src); err != nil {
		t.Fatal(err)
	}
	// A dead work dir: its lease is not locked by anyone.
	dead := filepath.Join(root, "tmp", workPrefix+"dead")
	if err := os.MkdirAll(filepath.Join(dead, "layer-x", "fs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, "lease"), []byte(l.diffID.Hex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := gc.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "layers", l.diffID.Hex, "fs", "f")); err != nil {
		t.Errorf("GC removed a leased layer: %v", err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("dead work dir survived GC: %v", err)
	}
	w.close()
	if err := gc.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, filepath.Join(root, "layers")); len(got) != 0 {
		t.Errorf("unreferenced layer survived GC after its lease ended: %v", got)
	}
	if got := dirNames(t, filepath.Join(root, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ = %v", got)
	}
}

func TestImportCompressionsAndVerification(t *testing.T) {
	ctx := context.Background()
	gz := newLayer(t, types.OCILayer, map[string]string{"gz": "1"})
	zs := newLayer(t, types.OCILayerZStd, map[string]string{"zstd": "2"})
	raw := newLayer(t, types.OCIUncompressedLayer, map[string]string{"raw": "3"})
	odd := newLayer(t, types.OCILayer, map[string]string{"sniffed": "4"})
	odd.mt = "application/x-unknown" // gzip, found by sniffing
	img := newImage(t, v1.Config{}, nil, gz, zs, raw, odd)

	t.Run("all kinds", func(t *testing.T) {
		s := newStore(t, t.TempDir())
		imgs, err := s.Import(ctx, ociTar(t, ociEntry{img: img, ann: map[string]string{annotationContainerdName: "mixed:1"}}))
		if err != nil {
			t.Fatal(err)
		}
		dirs, err := s.LayerDirs(imgs[0])
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range []string{"gz", "zstd", "raw", "sniffed"} {
			if _, err := os.Stat(filepath.Join(dirs[i], f)); err != nil {
				t.Errorf("layer %d: %v", i, err)
			}
		}
	})
	t.Run("diffID mismatch", func(t *testing.T) {
		bad := *gz
		bad.diffID = sha([]byte("something else"))
		s := newStore(t, t.TempDir())
		_, err := s.Import(ctx, ociTar(t, ociEntry{img: newImage(t, v1.Config{}, nil, &bad)}))
		if err == nil || !strings.Contains(err.Error(), "diffID mismatch") || !strings.Contains(err.Error(), sha(gz.blob).String()) {
			t.Fatalf("Import = %v, want a diffID mismatch naming blob %s", err, sha(gz.blob))
		}
		if list, _ := s.List(); len(list) != 0 {
			t.Errorf("image recorded despite mismatch: %v", list)
		}
	})
	t.Run("unsafe layer", func(t *testing.T) {
		evil := newLayer(t, types.OCILayer, map[string]string{"../evil": "x"})
		s := newStore(t, t.TempDir())
		_, err := s.Import(ctx, ociTar(t, ociEntry{img: newImage(t, v1.Config{}, nil, evil)}))
		var ue *layer.UnsafeEntryError
		if !errors.As(err, &ue) || ue.Entry != "../evil" {
			t.Fatalf("Import = %v, want UnsafeEntryError for ../evil", err)
		}
	})
	t.Run("wrong platform", func(t *testing.T) {
		arm := newImage(t, v1.Config{}, &v1.Platform{OS: "linux", Architecture: "arm64"}, gz)
		s := newStore(t, t.TempDir())
		_, err := s.Import(ctx, ociTar(t, ociEntry{img: arm, platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}))
		if err == nil || !strings.Contains(err.Error(), "no image for platform linux/amd64") {
			t.Fatalf("Import of an arm64-only layout = %v", err)
		}
	})
	t.Run("not an archive", func(t *testing.T) {
		s := newStore(t, t.TempDir())
		if _, err := s.Import(ctx, strings.NewReader("hello")); err == nil {
			t.Fatal("Import of garbage succeeded")
		}
	})
}

func TestImportMultiPlatformIndexFromLayout(t *testing.T) {
	idx, imgs := multiPlatformIndex(t)
	for arch, want := range imgs {
		s, err := New(Options{Root: t.TempDir(), Platform: &v1.Platform{OS: "linux", Architecture: arch}, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Import(context.Background(), ociTar(t, ociEntry{idx: idx, ann: map[string]string{annotationContainerdName: "multi:1"}}))
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != imageID(t, want) {
			t.Errorf("%s: imported %+v, want %s", arch, got, imageID(t, want))
		}
		if wantDig := "docker.io/library/multi@" + manifestDigest(t, idx); got[0].RepoDigests[0] != wantDig {
			t.Errorf("repo digest %v, want the index digest %s", got[0].RepoDigests, wantDig)
		}
	}
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"docker.io/busybox", "docker.io/library/busybox:latest"},
		{"index.docker.io/library/busybox:1", "docker.io/library/busybox:1"},
		{"user/app", "docker.io/user/app:latest"},
		{"nodekit.local/web", "nodekit.local/web:latest"},
		{"127.0.0.1:5000/a/b:v2", "127.0.0.1:5000/a/b:v2"},
		{"busybox@sha256:" + strings.Repeat("a", 64), "docker.io/library/busybox@sha256:" + strings.Repeat("a", 64)},
		{"quay.io/x/y:t@sha256:" + strings.Repeat("b", 64), "quay.io/x/y@sha256:" + strings.Repeat("b", 64)},
	} {
		got, err := parseRef(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("parseRef(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "a b"} {
		if _, err := parseRef(bad); err == nil {
			t.Errorf("parseRef(%q) succeeded", bad)
		}
	}
}

func TestFindByPrefix(t *testing.T) {
	ix := index{images: map[string]*record{}}
	for _, id := range []string{"sha256:abc1" + strings.Repeat("0", 60), "sha256:abc2" + strings.Repeat("0", 60), "sha256:def0" + strings.Repeat("0", 60)} {
		ix.images[id] = &record{Image: Image{ID: id}}
	}
	tests := []struct {
		ref, want string
		err       error
	}{
		{"abc1", "sha256:abc1" + strings.Repeat("0", 60), nil},
		{"sha256:def", "sha256:def0" + strings.Repeat("0", 60), nil},
		{"abc", "", errAmbiguous},
		{"fff", "", ErrNotFound},
		{"", "", ErrNotFound},
	}
	for _, tc := range tests {
		r, err := ix.find(tc.ref)
		switch {
		case tc.err == errAmbiguous:
			if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "ambiguous") {
				t.Errorf("find(%q) = %v, want ambiguous", tc.ref, err)
			}
		case tc.err != nil:
			if !errors.Is(err, tc.err) {
				t.Errorf("find(%q) = %v, want %v", tc.ref, err, tc.err)
			}
		case err != nil || r.ID != tc.want:
			t.Errorf("find(%q) = %v, %v; want %s", tc.ref, r, err, tc.want)
		}
	}
}

var errAmbiguous = errors.New("ambiguous")

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
