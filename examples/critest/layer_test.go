package main

import (
	"archive/tar"
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

var mtime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type header struct {
	name, link string
	typ        byte
	mode       int64
	uid        int
}

func headers(t *testing.T, l *layer) []header {
	t.Helper()
	var out []header
	tr := tar.NewReader(bytes.NewReader(l.tar))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(mtime) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v, owner names %q %q", h.Name, h.ModTime, h.Uname, h.Gname)
		}
		out = append(out, header{h.Name, h.Linkname, h.Typeflag, h.Mode, h.Uid})
	}
}

func TestNewLayer(t *testing.T) {
	entries := []entry{
		hardlinkEntry("bin/ash", "bin/busybox"), // before its target by name
		fileEntry("bin/busybox", 0o755, []byte("elf")),
		symlinkEntry("var/run", "../run"),
		{name: "home/user", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		fileEntry("usr/local/bin/nnp", 0o4755, []byte("x")),
	}
	l, err := newLayer(entries, mtime)
	if err != nil {
		t.Fatal(err)
	}
	want := []header{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755},
		{name: "home/", typ: tar.TypeDir, mode: 0o755},
		{name: "home/user/", typ: tar.TypeDir, mode: 0o700, uid: 1000},
		{name: "usr/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/local/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/local/bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/local/bin/nnp", typ: tar.TypeReg, mode: 0o4755},
		{name: "var/", typ: tar.TypeDir, mode: 0o755},
		{name: "var/run", typ: tar.TypeSymlink, mode: 0o777, link: "../run"},
		{name: "bin/ash", typ: tar.TypeLink, mode: 0o755, link: "bin/busybox"},
	}
	if got := headers(t, l); !slices.Equal(got, want) {
		t.Errorf("entries:\n%v\nwant\n%v", got, want)
	}
	if l.diffID != sha256Hash(l.tar) || l.digest != sha256Hash(l.blob) {
		t.Error("digests do not match the content")
	}

	// Same entries in another order: the same bytes. Another time: other bytes.
	rev := slices.Clone(entries)
	slices.Reverse(rev)
	again, err := newLayer(rev, mtime)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.blob, l.blob) {
		t.Error("the layer depends on the order of its entries")
	}
	later, err := newLayer(entries, mtime.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if later.digest == l.digest {
		t.Error("the layer does not depend on its timestamp")
	}
}

func TestNewLayerErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"absolute", []entry{fileEntry("/etc/passwd", 0o644, nil)}, "relative path"},
		{"escape", []entry{fileEntry("../x", 0o644, nil)}, "relative path"},
		{"duplicate", []entry{fileEntry("a", 0o644, nil), fileEntry("./a", 0o644, nil)}, "listed twice"},
		{"link to nothing", []entry{hardlinkEntry("bin/ls", "bin/busybox")}, "hard link target"},
		{"link to a directory", []entry{dirEntry("d", 0o755), hardlinkEntry("l", "d")}, "hard link target"},
		{"file as parent", []entry{fileEntry("a", 0o644, nil), fileEntry("a/b", 0o644, nil)}, "not a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newLayer(tc.entries, mtime)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("newLayer = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestTriplet(t *testing.T) {
	for arch, want := range map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "s390x": ""} {
		got, err := tripletOf(arch)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("tripletOf(%s) = %q, %v", arch, got, err)
		}
	}
}

func TestSkipRegexpMatchesOnlyTheOfflineSkips(t *testing.T) {
	re := skipRegexp()
	for _, name := range []string{
		"[k8s.io] Image Manager public image with digest should be pulled and removed [Conformance] [Serial]",
	} {
		if !matches(t, re, name) {
			t.Errorf("%q does not skip %q", re, name)
		}
	}
	for _, name := range []string{
		"[k8s.io] Image Manager public image with tag should be pulled and removed [Conformance] [Serial]",
		"[k8s.io] Image Manager public image without tag should be pulled and removed [Conformance] [Serial]",
	} {
		if matches(t, re, name) {
			t.Errorf("%q skips %q", re, name)
		}
	}
	if r := skipReason("[k8s.io] Image Manager public image with digest should be pulled and removed [Conformance]"); !strings.Contains(r, "offline") {
		t.Errorf("skipReason = %q", r)
	}
}
