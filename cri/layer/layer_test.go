//go:build linux

package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var t0 = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

// tarOf builds a tar stream; entries without a ModTime get t0, without a Mode get 0644
// (0755 for directories).
func tarOf(t testing.TB, hdrs ...tar.Header) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.ModTime.IsZero() {
			h.ModTime = t0
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		body := h.Linkname
		if h.Typeflag == tar.TypeReg {
			// The body of a regular file is passed in Linkname to keep tables short.
			h.Size = int64(len(body))
			h.Linkname = ""
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func file(name, content string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeReg, Linkname: content}
}
func dir(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeDir} }
func symlink(name, target string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
}
func hardlink(name, target string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}
}

// sandbox returns a layer dir inside an outer dir that also holds an empty "sentinel"
// directory, and a check that nothing was written outside the layer dir.
func sandbox(t *testing.T) (layerDir, sentinel string, outside func()) {
	t.Helper()
	outer := t.TempDir()
	layerDir = filepath.Join(outer, "root", "layer")
	sentinel = filepath.Join(outer, "sentinel")
	for _, d := range []string{layerDir, sentinel} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return layerDir, sentinel, func() {
		t.Helper()
		var got []string
		// The callback reports what cannot be read and never fails the walk.
		_ = filepath.WalkDir(outer, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Errorf("walk %s: %v", p, err)
				return nil
			}
			rel, _ := filepath.Rel(outer, p)
			if rel == "root/layer" {
				return filepath.SkipDir
			}
			got = append(got, rel)
			return nil
		})
		want := []string{".", "root", "sentinel"}
		if !slices.Equal(got, want) {
			t.Errorf("outside the layer dir: %v, want %v", got, want)
		}
	}
}

func TestApplyRejectsUnsafeEntries(t *testing.T) {
	tests := []struct {
		name  string
		hdrs  func(sentinel string) []tar.Header
		entry string
		why   string
	}{
		{"dotdot", func(string) []tar.Header { return []tar.Header{file("../evil", "x")} }, "../evil", reasonEscape},
		{"dotdot deep", func(string) []tar.Header { return []tar.Header{file("a/../../evil", "x")} }, "a/../../evil", reasonEscape},
		{"dotdot dir", func(string) []tar.Header { return []tar.Header{dir("../evil/")} }, "../evil/", reasonEscape},
		{"absolute", func(string) []tar.Header { return []tar.Header{file("/abs", "x")} }, "/abs", reasonAbsolute},
		{"write through absolute symlink", func(s string) []tar.Header {
			return []tar.Header{symlink("a", s), file("a/passwd", "root::0:0::/:/bin/sh")}
		}, "a/passwd", reasonParentSymlink},
		{"write through symlink to /etc", func(s string) []tar.Header {
			// Rejected before anything is opened: a/passwd is never resolved.
			return []tar.Header{symlink("a", "/etc"), dir("a/sub/")}
		}, "a/sub/", reasonParentSymlink},
		{"write through relative symlink", func(string) []tar.Header {
			return []tar.Header{symlink("a", ".."), file("a/x", "x")}
		}, "a/x", reasonParentSymlink},
		{"write through nested symlink", func(string) []tar.Header {
			return []tar.Header{dir("d/"), symlink("d/up", "../.."), file("d/up/sentinel/x", "x")}
		}, "d/up/sentinel/x", reasonParentSymlink},
		{"symlink inside the layer is still refused", func(string) []tar.Header {
			return []tar.Header{dir("real/"), symlink("alias", "real"), file("alias/x", "x")}
		}, "alias/x", reasonParentSymlink},
		{"hardlink escapes", func(string) []tar.Header {
			return []tar.Header{hardlink("pw", "../../etc/passwd")}
		}, "pw", reasonLinkEscape},
		{"hardlink absolute", func(string) []tar.Header {
			return []tar.Header{hardlink("pw", "/etc/passwd")}
		}, "pw", reasonLinkEscape},
		{"hardlink missing", func(string) []tar.Header {
			return []tar.Header{file("a", "x"), hardlink("b", "missing")}
		}, "b", reasonLinkAbsent},
		{"hardlink through symlink", func(s string) []tar.Header {
			return []tar.Header{symlink("s", s), hardlink("b", "s/x")}
		}, "b", reasonLinkSymlink},
		{"hardlink through in-layer symlink", func(string) []tar.Header {
			return []tar.Header{dir("d/"), file("d/f", "x"), symlink("s", "d"), hardlink("b", "s/f")}
		}, "b", reasonLinkSymlink},
		{"hardlink to directory", func(string) []tar.Header {
			return []tar.Header{dir("d/"), hardlink("b", "d")}
		}, "b", reasonLinkAbsent},
		{"char device", func(string) []tar.Header {
			return []tar.Header{{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}
		}, "dev/null", reasonDevice},
		{"block device", func(string) []tar.Header {
			return []tar.Header{{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0}}
		}, "dev/sda", reasonDevice},
		{"whiteout of parent", func(string) []tar.Header { return []tar.Header{file("a/.wh..", "")} }, "a/.wh..", reasonWhiteout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, sentinel, outside := sandbox(t)
			_, err := Apply(context.Background(), d, tarOf(t, tc.hdrs(sentinel)...), Options{})
			var ue *UnsafeEntryError
			if !errors.As(err, &ue) {
				t.Fatalf("Apply error = %v, want *UnsafeEntryError", err)
			}
			if ue.Entry != tc.entry || !strings.HasPrefix(ue.Reason, tc.why) {
				t.Errorf("error = %+v, want entry %q reason %q", ue, tc.entry, tc.why)
			}
			if !strings.Contains(err.Error(), `layer entry "`+tc.entry+`"`) {
				t.Errorf("message %q does not name the entry", err)
			}
			outside()
			if ents, _ := os.ReadDir(sentinel); len(ents) != 0 {
				t.Errorf("sentinel dir was written: %v", ents)
			}
		})
	}
}

func TestApplyWalkFallbackRejectsSymlinks(t *testing.T) {
	noOpenat2.Store(true)
	t.Cleanup(func() { noOpenat2.Store(false) })
	d, sentinel, outside := sandbox(t)
	_, err := Apply(context.Background(), d, tarOf(t, dir("x/"), symlink("x/a", sentinel), file("x/a/f", "x")), Options{})
	var ue *UnsafeEntryError
	if !errors.As(err, &ue) || ue.Entry != "x/a/f" || ue.Reason != reasonParentSymlink+" (x/a)" {
		t.Fatalf("Apply error = %v, want unsafe entry x/a/f through x/a", err)
	}
	outside()
	// The walk also creates missing parents.
	d2, _, _ := sandbox(t)
	if _, err := Apply(context.Background(), d2, tarOf(t, file("p/q/r", "ok")), Options{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(d2, "p/q/r")); err != nil || string(b) != "ok" {
		t.Fatalf("p/q/r = %q, %v", b, err)
	}
}

func stat(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func TestApplyGoodLayer(t *testing.T) {
	d, _, outside := sandbox(t)
	dirTime := t0.Add(time.Hour)
	fileTime := t0.Add(2 * time.Hour)
	hdrs := []tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: dirTime},
		{Name: "bin/tool", Typeflag: tar.TypeReg, Mode: 0o4755, Linkname: "#!/bin/sh\n", ModTime: fileTime},
		hardlink("bin/tool2", "bin/tool"),
		symlink("bin/sh", "/bin/busybox"),
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		{Name: "shared/", Typeflag: tar.TypeDir, Mode: 0o2775},
		{Name: "etc/secret", Typeflag: tar.TypeReg, Mode: 0o600, Linkname: "s3cret"},
		file("etc/motd", "old"),
		file("etc/motd", "new"), // a later entry replaces an earlier one
		dir("etc/conf.d/"),
		file("etc/conf.d/a", "a"),
		file("etc/conf.d", "now a file"), // replaces a whole directory
		{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o620},
		file("a/b/c/deep", "implicit parents"),
		file("x/../y", "cleaned to y"),
	}
	stats, err := Apply(context.Background(), d, tarOf(t, hdrs...), Options{})
	if err != nil {
		t.Fatal(err)
	}
	outside()

	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(d, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for p, want := range map[string]string{
		"bin/tool": "#!/bin/sh\n", "etc/secret": "s3cret", "etc/motd": "new",
		"etc/conf.d": "now a file", "a/b/c/deep": "implicit parents", "y": "cleaned to y",
	} {
		if got := read(p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	modes := map[string]fs.FileMode{
		"bin/tool":   0o755 | fs.ModeSetuid,
		"etc/secret": 0o600,
		"tmp":        fs.ModeDir | 0o777 | fs.ModeSticky,
		"shared":     fs.ModeDir | 0o775 | fs.ModeSetgid,
		"run/fifo":   fs.ModeNamedPipe | 0o620,
		"a/b":        fs.ModeDir | 0o755, // implicit
		"bin/sh":     fs.ModeSymlink | 0o777,
	}
	for p, want := range modes {
		fi, err := os.Lstat(filepath.Join(d, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode = %v, want %v", p, fi.Mode(), want)
		}
	}
	if target, err := os.Readlink(filepath.Join(d, "bin/sh")); err != nil || target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q, %v", target, err)
	}
	if a, b := stat(t, filepath.Join(d, "bin/tool")), stat(t, filepath.Join(d, "bin/tool2")); a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard link: inodes %d and %d, nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	for p, want := range map[string]time.Time{"bin": dirTime, "bin/tool": fileTime, "etc/secret": t0} {
		fi, err := os.Lstat(filepath.Join(d, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(want) {
			t.Errorf("%s mtime = %v, want %v", p, fi.ModTime(), want)
		}
	}
	if _, err := os.Lstat(filepath.Join(d, "etc/conf.d/a")); err == nil {
		t.Error("etc/conf.d/a survived its directory being replaced")
	}
	// root, bin, bin/tool(+tool2), bin/sh, tmp, shared, etc, etc/secret, etc/motd,
	// etc/conf.d, run, run/fifo, a, a/b, a/b/c, a/b/c/deep, y
	if stats.Inodes != 17 {
		t.Errorf("Inodes = %d, want 17", stats.Inodes)
	}
	if stats.Bytes < 17*512 {
		t.Errorf("Bytes = %d, implausibly small", stats.Bytes)
	}
}

func TestApplyReadsWholeStream(t *testing.T) {
	d, _, _ := sandbox(t)
	buf := tarOf(t, file("f", "x"))
	buf.Write(make([]byte, 10240)) // record padding some writers add
	r := bytes.NewReader(buf.Bytes())
	if _, err := Apply(context.Background(), d, r, Options{}); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left unread", r.Len())
	}
}

func TestApplyHonoursCancel(t *testing.T) {
	d, _, _ := sandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, d, tarOf(t, file("f", "x")), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with cancelled context = %v, want context.Canceled", err)
	}
	if _, err := os.Lstat(filepath.Join(d, "f")); err == nil {
		t.Error("f written after cancel")
	}
}

func TestApplyDropsOverlayXattrs(t *testing.T) {
	d, _, _ := sandbox(t)
	h := file("f", "x")
	h.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc"}
	if _, err := Apply(context.Background(), d, tarOf(t, h), Options{}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := syscall.Getxattr(filepath.Join(d, "f"), "trusted.overlay.redirect", buf); err == nil {
		t.Fatalf("trusted.overlay.redirect = %q was applied", buf[:n])
	}
}
