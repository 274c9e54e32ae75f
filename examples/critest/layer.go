package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file of a layer. Names are relative ("bin/sh"); link is the target of
// a symlink or, for tar.TypeLink, the layer path of the file linked to.
type entry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	data     []byte
	link     string
}

func dirEntry(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }

func fileEntry(name string, mode int64, data []byte) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, data: data}
}

func symlinkEntry(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}

func hardlinkEntry(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, mode: 0o755, link: target}
}

// layer is a gzip-compressed layer blob kept in memory: a v1.Layer with exactly the
// bytes we wrote.
type layer struct {
	blob, tar []byte
	digest    v1.Hash
	diffID    v1.Hash
}

func (l *layer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *layer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *layer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}
func (l *layer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.tar)), nil
}
func (l *layer) Size() (int64, error)                { return int64(len(l.blob)), nil }
func (l *layer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

func sha256Hash(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// newLayer writes entries as a reproducible layer: entries sorted by name (hard
// links after everything else) with their missing parent directories added (0755), one mtime, uid/gid as given and no user
// names, gzip at a fixed level with an empty header. The same entries always give
// the same bytes (for one Go release).
func newLayer(entries []entry, mtime time.Time) (*layer, error) {
	byName := map[string]entry{}
	for _, e := range entries {
		name := path.Clean(e.name)
		if path.IsAbs(name) || name == "." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("layer entry %q: want a relative path inside the layer", e.name)
		}
		if _, dup := byName[name]; dup {
			return nil, fmt.Errorf("layer entry %q: listed twice", name)
		}
		e.name = name
		byName[name] = e
	}
	for name := range byName {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if p, ok := byName[d]; ok {
				if p.typ != tar.TypeDir {
					return nil, fmt.Errorf("layer entry %q: parent %q is not a directory", name, d)
				}
				continue
			}
			byName[d] = dirEntry(d, 0o755)
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	// Sorted by name, hard links last: a link's target must precede it in the tar.
	slices.SortFunc(names, func(a, b string) int {
		la, lb := byName[a].typ == tar.TypeLink, byName[b].typ == tar.TypeLink
		if la != lb {
			if la {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})

	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, n := range names {
		e := byName[n]
		h := &tar.Header{
			Typeflag: e.typ,
			Name:     n,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}
		switch e.typ {
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeReg:
			h.Size = int64(len(e.data))
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = e.link
			if e.typ == tar.TypeLink {
				if t, ok := byName[path.Clean(e.link)]; !ok || t.typ != tar.TypeReg {
					return nil, fmt.Errorf("layer entry %q: hard link target %q is not a regular file of the layer", n, e.link)
				}
			}
		default:
			return nil, fmt.Errorf("layer entry %q: unsupported type %q", n, e.typ)
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %q: %w", n, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("layer entry %q: %w", n, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &layer{blob: gz.Bytes(), tar: raw.Bytes(), digest: sha256Hash(gz.Bytes()), diffID: sha256Hash(raw.Bytes())}, nil
}

// libDirs are where the host's shared libraries are looked up, in order.
func libDirs(triplet string) []string {
	return []string{"/lib/" + triplet, "/usr/lib/" + triplet, "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
}

// elfDeps returns the program interpreter and the shared libraries (by soname, with
// their resolved host path) that binary needs, transitively.
func elfDeps(binary string, dirs []string) (interp string, libs map[string]string, err error) {
	libs = map[string]string{}
	f, err := elf.Open(binary)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", binary, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				f.Close()
				return "", nil, fmt.Errorf("%s: interpreter: %w", binary, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	f.Close()
	queue := []string{binary}
	for len(queue) > 0 {
		file := queue[0]
		queue = queue[1:]
		f, err := elf.Open(file)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", file, err)
		}
		needed, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, so := range needed {
			if _, done := libs[so]; done {
				continue
			}
			found := ""
			for _, d := range dirs {
				if _, err := os.Stat(filepath.Join(d, so)); err == nil {
					found = filepath.Join(d, so)
					break
				}
			}
			if found == "" {
				return "", nil, fmt.Errorf("%s needs %s, not found in %s", file, so, strings.Join(dirs, ", "))
			}
			libs[so] = found
			queue = append(queue, found)
		}
	}
	return interp, libs, nil
}

// withLibraries adds to entries what binaries need to run: their interpreter at its
// own path and every shared library at lib/<triplet>/<soname>, as regular files.
// Libraries already among entries are not added twice.
func withLibraries(entries []entry, triplet string, binaries ...string) ([]entry, error) {
	have := map[string]bool{}
	for _, e := range entries {
		have[path.Clean(e.name)] = true
	}
	add := func(name, src string) error {
		name = strings.TrimPrefix(path.Clean(name), "/")
		if have[name] {
			return nil
		}
		b, err := os.ReadFile(src) // follows symlinks: the library itself
		if err != nil {
			return err
		}
		have[name] = true
		entries = append(entries, fileEntry(name, 0o755, b))
		return nil
	}
	for _, bin := range binaries {
		interp, libs, err := elfDeps(bin, libDirs(triplet))
		if err != nil {
			return nil, err
		}
		if interp != "" {
			if err := add(interp, interp); err != nil {
				return nil, fmt.Errorf("%s: interpreter: %w", bin, err)
			}
		}
		sonames := make([]string, 0, len(libs))
		for so := range libs {
			sonames = append(sonames, so)
		}
		slices.Sort(sonames)
		for _, so := range sonames {
			if err := add(path.Join("lib", triplet, so), libs[so]); err != nil {
				return nil, fmt.Errorf("%s: %w", bin, err)
			}
		}
	}
	return entries, nil
}
