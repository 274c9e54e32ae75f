package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// requireInputs skips (or fails under make test) when the build inputs are
// missing: a static busybox at /bin/busybox and a C compiler.
func requireInputs(t *testing.T) {
	t.Helper()
	if _, err := staticELF("/bin/busybox"); err != nil {
		testenv.Skip(t, "needs Debian's busybox-static: "+err.Error())
	}
	testenv.LookPath(t, "gcc")
}

// build builds the images named by only (all when empty) into a new
// temporary directory and returns the results by name.
func build(t *testing.T, only string, created time.Time) map[string]Result {
	t.Helper()
	requireInputs(t)
	results, err := Build(context.Background(), Options{OutDir: t.TempDir(), Only: only, Created: created})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	byName := map[string]Result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	return byName
}

// ociArchive is an archive read back: its files and decoded documents.
type ociArchive struct {
	headers  []*tar.Header
	files    map[string][]byte
	index    ocispec.Index
	manifest ocispec.Manifest
	config   ocispec.Image
	docker   []dockerManifest
}

func (a ociArchive) blob(t *testing.T, d digest.Digest) []byte {
	t.Helper()
	b, ok := a.files["blobs/sha256/"+d.Encoded()]
	if !ok {
		t.Fatalf("blob %s missing from archive", d)
	}
	return b
}

// readArchive parses an image archive and checks that every blob is stored
// under its own digest.
func readArchive(t *testing.T, path string) ociArchive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := ociArchive{files: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		a.headers = append(a.headers, hdr)
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, hdr.Name, err)
		}
		a.files[hdr.Name] = b
	}
	for name, b := range a.files {
		if hexDigest, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			if got := digest.FromBytes(b).Encoded(); got != hexDigest {
				t.Errorf("%s: blob %s has sha256 %s", path, name, got)
			}
		}
	}
	if got := string(a.files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("%s: oci-layout = %q", path, got)
	}
	decode := func(name string, b []byte, v any) {
		t.Helper()
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
	}
	decode("index.json", a.files["index.json"], &a.index)
	decode("manifest.json", a.files["manifest.json"], &a.docker)
	if len(a.index.Manifests) != 1 {
		t.Fatalf("%s: index.json has %d manifests, want 1", path, len(a.index.Manifests))
	}
	decode("manifest", a.blob(t, a.index.Manifests[0].Digest), &a.manifest)
	decode("config", a.blob(t, a.manifest.Config.Digest), &a.config)
	return a
}

// layerHeaders decompresses a layer blob and returns its tar headers and
// file contents, checking the gzip header carries no name and no time.
func layerHeaders(t *testing.T, blob []byte) ([]*tar.Header, map[string][]byte, digest.Digest) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() || zr.Comment != "" {
		t.Errorf("gzip header not neutral: name=%q mtime=%v comment=%q", zr.Name, zr.ModTime, zr.Comment)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var hdrs []*tar.Header
	data := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, hdr)
		if hdr.Typeflag == tar.TypeReg {
			if data[hdr.Name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	return hdrs, data, digest.FromBytes(raw)
}

func TestCreatedTime(t *testing.T) {
	tests := []struct {
		env     string
		want    string
		wantErr bool
	}{
		{"", "2026-01-01T00:00:00Z", false},
		{"0", "1970-01-01T00:00:00Z", false},
		{"1700000000", "2023-11-14T22:13:20Z", false},
		{"-1", "", true},
		{"yesterday", "", true},
	}
	for _, tt := range tests {
		got, err := CreatedTime(tt.env)
		if (err != nil) != tt.wantErr {
			t.Errorf("CreatedTime(%q) error = %v, wantErr %v", tt.env, err, tt.wantErr)
			continue
		}
		if err == nil && got.Format(time.RFC3339) != tt.want {
			t.Errorf("CreatedTime(%q) = %s, want %s", tt.env, got.Format(time.RFC3339), tt.want)
		}
	}
}

func TestSelectImages(t *testing.T) {
	tests := []struct {
		only    string
		want    []string
		wantErr bool
	}{
		{"", []string{"busybox", "web", "pause"}, false},
		{"web", []string{"web"}, false},
		{"pause, busybox", []string{"busybox", "pause"}, false},
		{"web,web", []string{"web"}, false},
		{"nginx", nil, true},
		{",", nil, true},
	}
	for _, tt := range tests {
		got, err := selectImages(tt.only)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("selectImages(%q) = %v, %v; want %v (error %v)", tt.only, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestAppletLinks(t *testing.T) {
	tests := []struct {
		list    string
		want    []string
		wantErr bool
	}{
		{"bin/busybox\nbin/sh\nusr/bin/env\n", []string{"bin/sh", "usr/bin/env"}, false},
		{"linuxrc\nsbin/ip\nsbin/ip\n", []string{"sbin/ip"}, false},
		{"etc/init.d/rc\n", nil, true},
		{"bin/../etc/x\n", nil, true},
		{"bin/busybox\n", nil, true},
	}
	for _, tt := range tests {
		got, err := appletLinks(tt.list)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("appletLinks(%q) = %v, %v; want %v (error %v)", tt.list, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestWriteTarRejects(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
	}{
		{"missing parent", []entry{file("etc/passwd", 0o644, nil)}},
		{"duplicate", []entry{dir("etc", 0o755), dir("etc", 0o755)}},
		{"absolute", []entry{file("/pause", 0o755, nil)}},
		{"escape", []entry{file("../pause", 0o755, nil)}},
		{"unclean", []entry{dir("etc", 0o755), file("etc//passwd", 0o644, nil)}},
	}
	for _, tt := range tests {
		if _, err := writeTar(tt.entries, time.Unix(0, 0)); err == nil {
			t.Errorf("%s: writeTar accepted %+v", tt.name, tt.entries)
		}
	}
}

func TestStaticELF(t *testing.T) {
	requireInputs(t)
	if arch, err := staticELF("/bin/busybox"); err != nil || arch == "" {
		t.Errorf("staticELF(/bin/busybox) = %q, %v; want an architecture", arch, err)
	}
	dynamic := testenv.LookPath(t, "ls")
	if _, err := staticELF(dynamic); err == nil {
		t.Errorf("staticELF(%s) accepted a dynamically linked binary", dynamic)
	}
	_, _, err := busyboxLayer(context.Background(), dynamic, time.Unix(0, 0))
	if err == nil || !strings.Contains(err.Error(), "busybox-static") {
		t.Errorf("busyboxLayer(%s) error = %v; want one naming the busybox-static package", dynamic, err)
	}
	text := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := staticELF(text); err == nil {
		t.Errorf("staticELF accepted a shell script")
	}
}

// TestReproducible builds everything twice and expects the same bytes, then
// once more with another SOURCE_DATE_EPOCH and expects different ones.
func TestReproducible(t *testing.T) {
	created, err := CreatedTime("")
	if err != nil {
		t.Fatal(err)
	}
	first := build(t, "", created)
	second := build(t, "", created)
	if len(first) != len(catalog) {
		t.Fatalf("built %d images, want %d", len(first), len(catalog))
	}
	for name, r1 := range first {
		r2 := second[name]
		b1, err := os.ReadFile(r1.Path)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := os.ReadFile(r2.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Errorf("%s: two builds differ (%s vs %s)", name, r1.ArchiveDigest, r2.ArchiveDigest)
		}
		if r1.ManifestDigest != r2.ManifestDigest {
			t.Errorf("%s: manifest digests differ: %s vs %s", name, r1.ManifestDigest, r2.ManifestDigest)
		}
		if got := digest.FromBytes(b1).String(); got != r1.ArchiveDigest {
			t.Errorf("%s: Result.ArchiveDigest = %s, file has %s", name, r1.ArchiveDigest, got)
		}
		t.Logf("%s: archive %s manifest %s", name, r1.ArchiveDigest, r1.ManifestDigest)
	}

	other := build(t, "pause", time.Unix(1700000000, 0))
	if other["pause"].ManifestDigest == first["pause"].ManifestDigest {
		t.Errorf("pause built with another creation time has the same manifest digest")
	}
	a := readArchive(t, other["pause"].Path)
	if a.config.Created == nil || !a.config.Created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("config created = %v, want 2023-11-14T22:13:20Z", a.config.Created)
	}
}

func TestArchives(t *testing.T) {
	created, err := CreatedTime("")
	if err != nil {
		t.Fatal(err)
	}
	results := build(t, "", created)
	tests := []struct {
		name       string
		ref        string
		layers     int
		entrypoint []string
		cmd        []string
		user       string
		workdir    string
		ports      []string
	}{
		{"busybox", "nodekit.local/busybox:latest", 1, nil, []string{"sh"}, "", "", nil},
		{"web", "nodekit.local/web:latest", 2, []string{"httpd", "-f", "-v", "-p", "8080", "-h", "/www"}, nil, "www-data", "/www", []string{"8080/tcp"}},
		{"pause", "nodekit.local/pause:latest", 1, []string{"/pause"}, nil, "65535:65535", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := results[tt.name]
			if !ok {
				t.Fatalf("no result for %s", tt.name)
			}
			if r.Ref != tt.ref || filepath.Base(r.Path) != tt.name+".tar" {
				t.Errorf("result = %+v, want ref %s in %s.tar", r, tt.ref, tt.name)
			}
			a := readArchive(t, r.Path)

			// Outer tar: sorted, fixed time, root-owned, no names.
			var names []string
			for _, h := range a.headers {
				names = append(names, h.Name)
				if !h.ModTime.Equal(created) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
					t.Errorf("archive entry %s: mtime %v uid %d gid %d uname %q gname %q", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
				}
			}
			if !slices.IsSorted(names) {
				t.Errorf("archive entries not sorted: %v", names)
			}

			// index.json names the image the way containerd reads it.
			desc := a.index.Manifests[0]
			if desc.Digest.String() != r.ManifestDigest || desc.MediaType != ocispec.MediaTypeImageManifest {
				t.Errorf("index manifest = %s %s, want %s %s", desc.MediaType, desc.Digest, ocispec.MediaTypeImageManifest, r.ManifestDigest)
			}
			if got := desc.Annotations["io.containerd.image.name"]; got != tt.ref {
				t.Errorf("io.containerd.image.name = %q, want %q", got, tt.ref)
			}
			if got := desc.Annotations["org.opencontainers.image.ref.name"]; got != "latest" {
				t.Errorf("org.opencontainers.image.ref.name = %q, want latest", got)
			}

			// Manifest and config.
			if a.manifest.MediaType != ocispec.MediaTypeImageManifest || a.manifest.Config.MediaType != ocispec.MediaTypeImageConfig {
				t.Errorf("manifest media types: %s, config %s", a.manifest.MediaType, a.manifest.Config.MediaType)
			}
			if len(a.manifest.Layers) != tt.layers || len(a.config.RootFS.DiffIDs) != tt.layers || len(a.config.History) != tt.layers {
				t.Fatalf("layers %d, diff_ids %d, history %d; want %d", len(a.manifest.Layers), len(a.config.RootFS.DiffIDs), len(a.config.History), tt.layers)
			}
			c := a.config
			if c.OS != "linux" || c.Architecture != "amd64" || c.Created == nil || !c.Created.Equal(created) {
				t.Errorf("config platform/created = %s/%s %v", c.OS, c.Architecture, c.Created)
			}
			if !slices.Equal(c.Config.Entrypoint, tt.entrypoint) || !slices.Equal(c.Config.Cmd, tt.cmd) {
				t.Errorf("entrypoint %q cmd %q, want %q %q", c.Config.Entrypoint, c.Config.Cmd, tt.entrypoint, tt.cmd)
			}
			if c.Config.User != tt.user || c.Config.WorkingDir != tt.workdir {
				t.Errorf("user %q workdir %q, want %q %q", c.Config.User, c.Config.WorkingDir, tt.user, tt.workdir)
			}
			var ports []string
			for p := range c.Config.ExposedPorts {
				ports = append(ports, p)
			}
			if !slices.Equal(ports, tt.ports) {
				t.Errorf("exposed ports %v, want %v", ports, tt.ports)
			}
			if !slices.Equal(c.Config.Env, []string{defaultPath}) {
				t.Errorf("env %q, want %q", c.Config.Env, defaultPath)
			}

			// docker manifest.json points at the same blobs.
			if len(a.docker) != 1 || !slices.Equal(a.docker[0].RepoTags, []string{tt.ref}) ||
				a.docker[0].Config != "blobs/sha256/"+a.manifest.Config.Digest.Encoded() {
				t.Fatalf("manifest.json = %+v", a.docker)
			}
			for i, l := range a.manifest.Layers {
				if l.MediaType != ocispec.MediaTypeImageLayerGzip || a.docker[0].Layers[i] != "blobs/sha256/"+l.Digest.Encoded() {
					t.Errorf("layer %d: %s %s, docker %s", i, l.MediaType, l.Digest, a.docker[0].Layers[i])
				}
				hdrs, _, diffID := layerHeaders(t, a.blob(t, l.Digest))
				if diffID != c.RootFS.DiffIDs[i] {
					t.Errorf("layer %d: diff_id %s, config says %s", i, diffID, c.RootFS.DiffIDs[i])
				}
				var lnames []string
				for _, h := range hdrs {
					lnames = append(lnames, h.Name)
					owner := 0
					if h.Name == "home/nodekit/" {
						owner = 1000
					}
					if !h.ModTime.Equal(created) || h.Uid != owner || h.Gid != owner || h.Uname != "" || h.Gname != "" {
						t.Errorf("layer %d entry %s: mtime %v uid %d gid %d uname %q gname %q", i, h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
					}
				}
				if !slices.IsSorted(lnames) {
					t.Errorf("layer %d entries not sorted", i)
				}
			}

			// go-containerregistry reads it both as a docker archive and, once
			// unpacked, as an OCI layout, and finds the same image.
			img, err := tarball.ImageFromPath(r.Path, nil)
			if err != nil {
				t.Fatalf("tarball.ImageFromPath: %v", err)
			}
			if cfgName, err := img.ConfigName(); err != nil || cfgName.String() != a.manifest.Config.Digest.String() {
				t.Errorf("docker-archive config = %v, %v; want %s", cfgName, err, a.manifest.Config.Digest)
			}
			dir := t.TempDir()
			for name, b := range a.files {
				p := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			idx, err := layout.ImageIndexFromPath(dir)
			if err != nil {
				t.Fatalf("layout.ImageIndexFromPath: %v", err)
			}
			limg, err := idx.Image(mustHash(t, r.ManifestDigest))
			if err != nil {
				t.Fatalf("layout image %s: %v", r.ManifestDigest, err)
			}
			if d, err := limg.Digest(); err != nil || d.String() != r.ManifestDigest {
				t.Errorf("layout image digest = %v, %v; want %s", d, err, r.ManifestDigest)
			}
		})
	}
}

func TestWebSharesBusyboxLayer(t *testing.T) {
	results := build(t, "busybox,web", time.Time{})
	bb := readArchive(t, results["busybox"].Path)
	web := readArchive(t, results["web"].Path)
	if len(bb.manifest.Layers) != 1 || len(web.manifest.Layers) != 2 {
		t.Fatalf("busybox has %d layers, web %d; want 1 and 2", len(bb.manifest.Layers), len(web.manifest.Layers))
	}
	if bb.manifest.Layers[0].Digest != web.manifest.Layers[0].Digest {
		t.Errorf("web's first layer %s is not busybox's layer %s", web.manifest.Layers[0].Digest, bb.manifest.Layers[0].Digest)
	}
	if bb.config.RootFS.DiffIDs[0] != web.config.RootFS.DiffIDs[0] {
		t.Errorf("diff_ids differ: %s vs %s", bb.config.RootFS.DiffIDs[0], web.config.RootFS.DiffIDs[0])
	}
	_, files, _ := layerHeaders(t, web.blob(t, web.manifest.Layers[1].Digest))
	if got := string(files["www/healthz"]); got != "ok\n" {
		t.Errorf("www/healthz = %q, want %q", got, "ok\n")
	}
	if !strings.Contains(string(files["www/index.html"]), "nodekit web sample") {
		t.Errorf("www/index.html = %q", files["www/index.html"])
	}
}

func TestBusyboxLayerContents(t *testing.T) {
	results := build(t, "busybox", time.Time{})
	a := readArchive(t, results["busybox"].Path)
	hdrs, files, _ := layerHeaders(t, a.blob(t, a.manifest.Layers[0].Digest))
	byName := map[string]*tar.Header{}
	for _, h := range hdrs {
		byName[h.Name] = h
	}
	want := []struct {
		name     string
		typ      byte
		mode     int64
		linkname string
	}{
		{"bin/busybox", tar.TypeReg, 0o755, ""},
		{"bin/sh", tar.TypeSymlink, 0o777, "busybox"},
		{"usr/bin/env", tar.TypeSymlink, 0o777, "../../bin/busybox"},
		{"sbin/ip", tar.TypeSymlink, 0o777, "../bin/busybox"},
		{"usr/sbin/httpd", tar.TypeSymlink, 0o777, "../../bin/busybox"},
		{"tmp/", tar.TypeDir, 0o1777, ""},
		{"root/", tar.TypeDir, 0o700, ""},
		{"proc/", tar.TypeDir, 0o555, ""},
		{"etc/passwd", tar.TypeReg, 0o644, ""},
		{"etc/group", tar.TypeReg, 0o644, ""},
		{"etc/nsswitch.conf", tar.TypeReg, 0o644, ""},
	}
	for _, w := range want {
		h, ok := byName[w.name]
		if !ok {
			t.Errorf("%s missing from the busybox layer", w.name)
			continue
		}
		if h.Typeflag != w.typ || h.Mode != w.mode || h.Linkname != w.linkname {
			t.Errorf("%s: type %c mode %o link %q; want %c %o %q", w.name, h.Typeflag, h.Mode, h.Linkname, w.typ, w.mode, w.linkname)
		}
	}
	for _, absent := range []string{"linuxrc", "etc/hostname", "www/"} {
		if _, ok := byName[absent]; ok {
			t.Errorf("%s should not be in the busybox layer", absent)
		}
	}
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files["bin/busybox"], bin) {
		t.Errorf("bin/busybox differs from /bin/busybox")
	}
	for _, line := range []string{"root:x:0:0:", "daemon:x:1:1:", "www-data:x:33:33:", "nodekit:x:1000:1000:", "nobody:x:65534:65534:"} {
		if !strings.Contains(string(files["etc/passwd"]), "\n"+line) && !strings.HasPrefix(string(files["etc/passwd"]), line) {
			t.Errorf("/etc/passwd lacks %q", line)
		}
	}
	for _, line := range []string{"root:x:0:", "www-data:x:33:", "users:x:100:nodekit", "nogroup:x:65534:", "nodekit:x:1000:www-data"} {
		if !strings.Contains(string(files["etc/group"]), line+"\n") {
			t.Errorf("/etc/group lacks %q", line)
		}
	}
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
