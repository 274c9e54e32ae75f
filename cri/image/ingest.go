package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
	"github.com/nodekit-dev/nodekit/cri/layer"
)

// candidate is an image about to enter the store, from a registry or an archive.
type candidate struct {
	config   ocispec.Image
	configID string            // "sha256:<hex>" of the config blob
	blobs    map[string][]byte // verified manifests, indexes and config by digest
	layers   []layerSource
	tags     []string // normalized "repo:tag" to point at this image
	digests  []string // "repo@sha256:..." to point at this image
}

// layerSource is one layer of a candidate.
type layerSource struct {
	diffID    v1.Hash
	blob      v1.Hash // digest of the (compressed) blob; zero when unknown (old docker archives)
	mediaType string
	open      func(ctx context.Context) (io.ReadCloser, error)
}

func (l layerSource) String() string {
	if l.blob.Hex != "" {
		return "layer blob " + l.blob.String()
	}
	return "layer " + l.diffID.String()
}

// work is a private directory under tmp/ holding an in-progress pull, import or GC.
// Its lease file is flocked for the work's lifetime and lists the layers the work
// holds (placed or found, not yet referenced by an image record): GC keeps them.
type work struct {
	dir   string
	lease *os.File
}

const workPrefix = "work-"

// newWork creates a work directory. It is created under the store lock so GC never sees
// it before its lease is locked.
func (s *Store) newWork() (*work, error) {
	var w *work
	err := s.mutate(func(*index) (bool, error) {
		dir, err := os.MkdirTemp(s.path("tmp"), workPrefix)
		if err != nil {
			return false, fmt.Errorf("image store: %w", err)
		}
		f, err := os.OpenFile(filepath.Join(dir, "lease"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
		if err == nil {
			var ok bool
			if ok, err = tryLock(f); err == nil && !ok {
				err = errors.New("lease already locked")
			}
			if err != nil {
				f.Close()
			}
		}
		if err != nil {
			os.RemoveAll(dir)
			return false, fmt.Errorf("image store: lease: %w", err)
		}
		w = &work{dir: dir, lease: f}
		return false, nil
	})
	return w, err
}

// hold records that the work holds layer hex. Called under the store lock.
func (w *work) hold(hex string) error {
	if _, err := w.lease.WriteString(hex + "\n"); err != nil {
		return fmt.Errorf("image store: lease: %w", err)
	}
	return nil
}

func (w *work) close() {
	os.RemoveAll(w.dir)
	w.lease.Close()
}

// sweepWork returns the layers held by live works and moves dead works (their process
// is gone: nobody holds their lease) into trash. Called under the store lock.
func (s *Store) sweepWork(trash *work) (map[string]bool, error) {
	held := map[string]bool{}
	ents, err := os.ReadDir(s.path("tmp"))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	for _, e := range ents {
		dir := s.path("tmp", e.Name())
		if !strings.HasPrefix(e.Name(), workPrefix) || dir == trash.dir {
			continue
		}
		live, data, err := readLease(filepath.Join(dir, "lease"))
		if err != nil {
			return nil, err
		}
		if live {
			for _, h := range strings.Fields(data) {
				held[h] = true
			}
			continue
		}
		if err := os.Rename(dir, filepath.Join(trash.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("image store: clear %s: %w", dir, err)
		}
	}
	return held, nil
}

// readLease reports whether a lease is still locked by its owner, and its content.
func readLease(p string) (bool, string, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, "", nil // the owner is removing its work directory
	}
	if err != nil {
		return false, "", fmt.Errorf("image store: lease: %w", err)
	}
	defer f.Close()
	free, err := tryLock(f)
	if err != nil {
		return false, "", fmt.Errorf("image store: lease %s: %w", p, err)
	}
	if free {
		return false, "", nil
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return false, "", fmt.Errorf("image store: lease %s: %w", p, err)
	}
	return true, string(b), nil
}

// flight is a layer unpack in progress in this process; others wait for it.
type flight struct{ done chan struct{} }

// ingest brings a candidate into the store: every layer present (unpacking what is
// missing), then the blobs and the image record. It returns the image and the number of
// blob bytes read.
func (s *Store) ingest(ctx context.Context, w *work, c *candidate) (Image, int64, error) {
	var read int64
	for _, l := range c.layers {
		n, err := s.ensureLayer(ctx, w, l)
		read += n
		if err != nil {
			return Image{}, read, err
		}
	}
	img, err := s.commit(c)
	return img, read, err
}

// ensureLayer makes layer l present in layers/ and held by w. Concurrent unpacks of
// one layer in this process wait for each other; across processes both unpack and the
// loser of the rename discards its copy.
func (s *Store) ensureLayer(ctx context.Context, w *work, l layerSource) (int64, error) {
	hex := l.diffID.Hex
	for {
		have := false
		err := s.mutate(func(ix *index) (bool, error) {
			if _, ok := ix.layers[hex]; !ok {
				return false, nil
			}
			if _, err := os.Lstat(filepath.Join(s.layerDir(hex), "fs")); err != nil {
				return false, nil // vanished behind our back: unpack again
			}
			have = true
			return false, w.hold(hex)
		})
		if err != nil || have {
			return 0, err
		}
		s.flightMu.Lock()
		f, busy := s.flights[hex]
		if !busy {
			f = &flight{done: make(chan struct{})}
			s.flights[hex] = f
		}
		s.flightMu.Unlock()
		if busy {
			select {
			case <-f.done:
				continue // look again; if the other unpack failed, try ourselves
			case <-ctx.Done():
				return 0, fmt.Errorf("%s: %w", l, ctx.Err())
			}
		}
		n, err := s.unpack(ctx, w, l)
		s.flightMu.Lock()
		delete(s.flights, hex)
		close(f.done)
		s.flightMu.Unlock()
		return n, err
	}
}

// unpack streams one layer blob into a fresh directory under w, verifying the blob
// digest and the diffID, and renames it into layers/.
func (s *Store) unpack(ctx context.Context, w *work, l layerSource) (int64, error) {
	start := time.Now()
	tmp, err := os.MkdirTemp(w.dir, "layer-")
	if err != nil {
		return 0, fmt.Errorf("%s: %w", l, err)
	}
	defer os.RemoveAll(tmp)
	fsDir := filepath.Join(tmp, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return 0, fmt.Errorf("%s: %w", l, err)
	}
	rc, err := l.open(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: open: %w", l, err)
	}
	defer rc.Close()
	blobHash := sha256.New()
	counter := &countWriter{}
	raw := io.TeeReader(rc, io.MultiWriter(blobHash, counter))
	dec, err := decompress(raw, l.mediaType)
	if err != nil {
		return counter.n, fmt.Errorf("%s: %w", l, err)
	}
	diffHash := sha256.New()
	stats, err := layer.Apply(ctx, fsDir, io.TeeReader(dec, diffHash), layer.Options{Logger: s.log})
	if cerr := dec.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		_, err = io.Copy(io.Discard, raw) // whatever follows the compressed stream
	}
	if err != nil {
		return counter.n, fmt.Errorf("%s: %w", l, err)
	}
	if l.blob.Hex != "" {
		if got := hex.EncodeToString(blobHash.Sum(nil)); got != l.blob.Hex {
			return counter.n, fmt.Errorf("%s: digest mismatch: content is sha256:%s", l, got)
		}
	}
	if got := hex.EncodeToString(diffHash.Sum(nil)); got != l.diffID.Hex {
		return counter.n, fmt.Errorf("%s: diffID mismatch: config says %s, content is sha256:%s", l, l.diffID, got)
	}
	meta := layerMeta{DiffID: l.diffID.String(), Bytes: stats.Bytes, Inodes: stats.Inodes}
	if err := atomicfile.WriteJSON(filepath.Join(tmp, "meta.json"), meta, 0o600); err != nil {
		return counter.n, fmt.Errorf("%s: %w", l, err)
	}
	hexID := l.diffID.Hex
	err = s.mutate(func(ix *index) (bool, error) {
		if _, err := os.Lstat(filepath.Join(s.layerDir(hexID), "fs")); err == nil {
			if _, ok := ix.layers[hexID]; ok {
				return false, w.hold(hexID) // another process won the race: keep theirs
			}
		}
		if _, err := os.Lstat(s.layerDir(hexID)); err == nil {
			// A broken leftover (no meta.json or no fs): replace it.
			if err := os.Rename(s.layerDir(hexID), tmp+".old"); err != nil {
				return false, err
			}
			defer os.RemoveAll(tmp + ".old")
		}
		if err := os.Rename(tmp, s.layerDir(hexID)); err != nil {
			return false, err
		}
		ix.layers[hexID] = meta
		if err := w.hold(hexID); err != nil {
			return true, err
		}
		return true, atomicfile.SyncDir(s.path("layers"))
	})
	if err != nil {
		return counter.n, fmt.Errorf("%s: place: %w", l, err)
	}
	s.log.Info("unpacked layer", "diffID", l.diffID.String(), "blob", l.blob.String(),
		"bytes", counter.n, "unpackedBytes", stats.Bytes, "duration", time.Since(start).Round(time.Millisecond))
	return counter.n, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// decompress picks the decompressor by media type, sniffing the magic number when the
// media type does not say (docker archives, unknown types).
func decompress(r io.Reader, mediaType string) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	kind := ""
	switch {
	case strings.HasSuffix(mediaType, "+encrypted"):
		return nil, fmt.Errorf("encrypted layers (%s) are not supported", mediaType)
	case strings.HasSuffix(mediaType, "+gzip"), strings.HasSuffix(mediaType, ".tar.gzip"):
		kind = "gzip"
	case strings.HasSuffix(mediaType, "+zstd"):
		kind = "zstd"
	case strings.HasSuffix(mediaType, ".tar"):
		kind = "none"
	default:
		magic, _ := br.Peek(4)
		switch {
		case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
			kind = "gzip"
		case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			kind = "zstd"
		default:
			kind = "none"
		}
	}
	switch kind {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case "zstd":
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// commit writes the candidate's blobs and image record, moving its tags and digests
// away from any other image.
func (s *Store) commit(c *candidate) (Image, error) {
	var img Image
	err := s.mutate(func(ix *index) (bool, error) {
		var size uint64
		layers := make([]string, len(c.layers))
		for i, l := range c.layers {
			m, ok := ix.layers[l.diffID.Hex]
			if !ok {
				return false, fmt.Errorf("image %s: %s vanished before commit", c.configID, l)
			}
			size += uint64(m.Bytes)
			layers[i] = l.diffID.String()
		}
		for d, b := range c.blobs {
			p := s.blobPath(d)
			if _, err := os.Stat(p); err == nil {
				continue
			}
			if err := atomicfile.WriteFile(p, b, 0o600); err != nil {
				return false, fmt.Errorf("image %s: blob %s: %w", c.configID, d, err)
			}
		}
		moving := append(slices.Clone(c.tags), c.digests...)
		for id, r := range ix.images {
			if id == c.configID {
				continue
			}
			n := len(r.RepoTags) + len(r.RepoDigests)
			r.RepoTags = slices.DeleteFunc(r.RepoTags, func(t string) bool { return slices.Contains(moving, t) })
			r.RepoDigests = slices.DeleteFunc(r.RepoDigests, func(t string) bool { return slices.Contains(moving, t) })
			if len(r.RepoTags)+len(r.RepoDigests) == n {
				continue
			}
			if err := atomicfile.WriteJSON(s.recordPath(id), r, 0o600); err != nil {
				return true, fmt.Errorf("image %s: untag: %w", id, err)
			}
		}
		r := ix.images[c.configID]
		if r == nil {
			r = &record{}
		}
		r.ID = c.configID
		r.RepoTags = union(r.RepoTags, c.tags)
		r.RepoDigests = union(r.RepoDigests, c.digests)
		r.Size = size
		r.Config = c.config.Config
		r.Layers = layers
		r.Created = time.Time{}
		if c.config.Created != nil {
			r.Created = c.config.Created.UTC()
		}
		for d := range c.blobs {
			r.Blobs = union(r.Blobs, []string{d})
		}
		if err := atomicfile.WriteJSON(s.recordPath(r.ID), r, 0o600); err != nil {
			return true, fmt.Errorf("image %s: %w", r.ID, err)
		}
		ix.images[r.ID] = r
		img = r.copyImage()
		return true, nil
	})
	return img, err
}

// union appends to a the elements of b it lacks, keeping a's order.
func union(a, b []string) []string {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}
