//go:build linux

package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// FuzzApply: a layer described as lines of entries (see entriesTar), written
// as a tar stream and applied. Whatever the layer holds, Apply writes nothing
// outside its directory (no entry there, no hard link to a file there, every
// path beneath the root after filepath.Rel), refuses unsafe entries with an
// *UnsafeEntryError naming one of the layer's entries, and when it succeeds
// the layer's last entry is there as written. With asRoot (root only: it
// skips otherwise, via testenv), ownership is applied and device nodes are
// allowed. Seeds: below and testdata/fuzz/FuzzApply.
func FuzzApply(f *testing.F) {
	for _, s := range []string{
		"d etc\nf etc/passwd root:x:0:0::/root:/bin/sh\nl bin/sh busybox\nf bin/busybox ELF\nh bin/ls bin/busybox\n",
		"f a/b/c x\nw a/.wh.b\nd a/b\nf a/b/.wh..wh..opq\n",
		"l evil ../../..\nf evil/x pwned\n",
		"l dir /\nh link evil/../../sentinel/file\nf ../x y\nf /abs z\n",
		"d a\nl a/b ../a\nf a/b/c x\np fifo\nc dev 1 3\nf ./. root\n",
		"x a user.k=v\nf a x\nx a trusted.overlay.opaque=y\nd .\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("c null 1 3\nb sda 8 0\nf own x\n"), true)
	f.Fuzz(func(t *testing.T, spec []byte, asRoot bool) {
		if len(spec) > 16<<10 {
			return
		}
		if asRoot {
			testenv.RequireRoot(t)
		}
		layer, names := entriesTar(t, spec)
		applyAndCheck(t, layer, names, Options{AllowDevices: asRoot, IgnoreOwnership: !asRoot})
	})
}

// FuzzApplyTar: FuzzApply's checks on any byte stream: real layers
// (testdata/fuzz/FuzzApplyTar holds the sample images' layers, trimmed) and
// what the fuzzer makes of them (PAX records, GNU long names, sparse files).
func FuzzApplyTar(f *testing.F) {
	for _, s := range []string{
		"d etc\nf etc/hosts 127.0.0.1 localhost\nl bin/sh busybox\nf bin/busybox ELF\nh bin/ls bin/busybox\n",
		"l evil ../..\nf evil/x pwned\n",
	} {
		layer, _ := entriesTar(f, []byte(s))
		f.Add(layer)
	}
	f.Fuzz(func(t *testing.T, layer []byte) {
		if len(layer) > 1<<20 {
			return
		}
		var names []string
		var size int64
		tr := tar.NewReader(bytes.NewReader(layer))
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			names = append(names, hdr.Name)
			size += max(hdr.Size, 0)
		}
		if size > 4<<20 {
			// A sparse entry's size is its logical size: a few bytes of tar
			// could have Apply write gigabytes of zeros (as a compressed layer
			// of zeros could). Not what this target looks for.
			return
		}
		applyAndCheck(t, layer, names, Options{IgnoreOwnership: true})
	})
}

// entriesTar builds a tar stream from a text of one entry per line:
//
//	d NAME              directory
//	f NAME [CONTENT]    regular file
//	l NAME TARGET       symbolic link
//	h NAME TARGET       hard link
//	p NAME              fifo
//	c|b NAME MAJ MIN    character or block device
//	w NAME              whiteout (the name as given, usually .wh.X)
//	x NAME KEY=VALUE    the next entry named NAME gets this xattr
//
// Modes come from a trailing " mode=0NNN" on d and f lines (default 0755 and
// 0644). It returns the stream and the entry names in order.
func entriesTar(t testing.TB, spec []byte) ([]byte, []string) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var names []string
	xattrs := map[string]map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(spec))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		name, arg, _ := strings.Cut(rest, " ")
		hdr := &tar.Header{Name: name, Mode: 0o644, Uid: 1000, Gid: 1000, Format: tar.FormatPAX}
		if m, ok := strings.CutPrefix(arg, "mode=0"); ok {
			var mode int64
			for _, r := range m {
				if r < '0' || r > '7' {
					break
				}
				mode = mode*8 + int64(r-'0')
			}
			hdr.Mode, arg = mode&0o7777, ""
		}
		var body string
		switch kind {
		case "d":
			hdr.Typeflag = tar.TypeDir
			if hdr.Mode == 0o644 {
				hdr.Mode = 0o755
			}
		case "f", "w":
			hdr.Typeflag, body = tar.TypeReg, arg
		case "l":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, arg
		case "h":
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, arg
		case "p":
			hdr.Typeflag = tar.TypeFifo
		case "c", "b":
			hdr.Typeflag = tar.TypeChar
			if kind == "b" {
				hdr.Typeflag = tar.TypeBlock
			}
			maj, minor, _ := strings.Cut(arg, " ")
			hdr.Devmajor, hdr.Devminor = int64(len(maj)), int64(len(minor)) // small numbers
			if maj == "1" && minor == "3" {
				hdr.Devmajor, hdr.Devminor = 1, 3
			}
		case "x":
			k, v, _ := strings.Cut(arg, "=")
			if xattrs[name] == nil {
				xattrs[name] = map[string]string{}
			}
			xattrs[name]["SCHILY.xattr."+k] = v
			continue
		default:
			continue
		}
		if x := xattrs[name]; x != nil {
			hdr.PAXRecords = x
			delete(xattrs, name)
		}
		hdr.Size = int64(len(body))
		if err := tw.WriteHeader(hdr); err != nil {
			continue // a header tar cannot write (bad PAX record): leave it out
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), names
}

// applyAndCheck applies layer into a fresh directory beside a sentinel
// directory holding one file, and checks Apply's promises.
func applyAndCheck(t *testing.T, layer []byte, names []string, opts Options) {
	t.Helper()
	outer, err := os.MkdirTemp("", "nkfuzz-layer-")
	if err != nil {
		t.Fatal(err)
	}
	defer removeTree(t, outer)
	dir := filepath.Join(outer, "root", "layer")
	sentinel := filepath.Join(outer, "sentinel")
	for _, d := range []string{dir, sentinel} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sentinelFile := filepath.Join(sentinel, "file")
	if err := os.WriteFile(sentinelFile, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	st, err := Apply(context.Background(), dir, bytes.NewReader(layer), opts)

	// Nothing outside the layer directory changed.
	var outside []string
	_ = filepath.WalkDir(outer, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatalf("walk %s: %v", p, err)
		}
		rel, _ := filepath.Rel(outer, p)
		if rel == "root/layer" {
			return filepath.SkipDir
		}
		outside = append(outside, rel)
		return nil
	})
	if strings.Join(outside, ",") != ".,root,sentinel,sentinel/file" {
		t.Fatalf("outside the layer directory: %v", outside)
	}
	var sst syscall.Stat_t
	if err := syscall.Lstat(sentinelFile, &sst); err != nil || sst.Nlink != 1 {
		t.Fatalf("the file outside the layer has %d links (%v)", sst.Nlink, err)
	}
	if b, _ := os.ReadFile(sentinelFile); string(b) != "outside" {
		t.Fatalf("the file outside the layer was written: %q", b)
	}
	// Everything inside is beneath the root; no hard link reaches outside.
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return nil // a directory the layer made unreadable (not root)
			}
			t.Fatalf("walk %s: %v", p, err)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
			t.Fatalf("%s is not beneath the layer root (%q, %v)", p, rel, err)
		}
		var lst syscall.Stat_t
		if err := syscall.Lstat(p, &lst); err == nil && lst.Ino == sst.Ino && lst.Dev == sst.Dev {
			t.Fatalf("%s is a hard link to the file outside the layer", rel)
		}
		return nil
	})

	if err != nil {
		var ue *UnsafeEntryError
		if errors.As(err, &ue) && !containsName(names, ue.Entry) {
			t.Fatalf("UnsafeEntryError names %q, not an entry of the layer %q", ue.Entry, names)
		}
		return
	}
	if st.Inodes < 1 || st.Bytes < 0 {
		t.Fatalf("stats %+v", st)
	}
	checkLastEntry(t, dir, layer)
}

func containsName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// checkLastEntry: after a successful Apply, the layer's last entry (which no
// later entry can replace) is in the directory with its type, and a regular
// file with its content.
func checkLastEntry(t *testing.T, dir string, layer []byte) {
	t.Helper()
	var last *tar.Header
	var body []byte
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		last = hdr
		body, _ = io.ReadAll(tr)
	}
	if last == nil {
		return
	}
	name := path.Clean(last.Name)
	base := path.Base(name)
	if strings.HasPrefix(base, whiteoutPrefix) || name == "." {
		return
	}
	p := filepath.Join(dir, filepath.FromSlash(name))
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatalf("the last entry %q (type %q) is missing: %v", last.Name, last.Typeflag, err)
	}
	want := map[byte]fs.FileMode{tar.TypeReg: 0, tar.TypeDir: fs.ModeDir, tar.TypeSymlink: fs.ModeSymlink,
		tar.TypeFifo: fs.ModeNamedPipe, tar.TypeChar: fs.ModeDevice | fs.ModeCharDevice, tar.TypeBlock: fs.ModeDevice}
	if m, ok := want[last.Typeflag]; ok && fi.Mode().Type() != m {
		t.Fatalf("the last entry %q (type %q) is a %v", last.Name, last.Typeflag, fi.Mode().Type())
	}
	switch last.Typeflag {
	case tar.TypeReg:
		if fi.Mode().Perm()&0o400 == 0 && os.Geteuid() != 0 {
			return
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("the last entry %q holds %q (%v), want %q", last.Name, got, err, body)
		}
	case tar.TypeSymlink:
		if got, err := os.Readlink(p); err != nil || got != last.Linkname {
			t.Fatalf("the last entry %q links to %q (%v), want %q", last.Name, got, err, last.Linkname)
		}
	}
}

// removeTree removes dir even where the layer left directories without
// write or search permission (when not root). Only directories are made
// accessible again: WalkDir never follows a symbolic link the layer planted.
func removeTree(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err == nil {
		return
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(p, 0o700) // before WalkDir reads it
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatalf("cannot remove %s: %v", dir, err)
	}
}
