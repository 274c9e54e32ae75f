package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
)

// ErrNotFound is wrapped by errors for unknown image references and missing layers.
var ErrNotFound = errors.New("image not found")

// Options configure a Store.
type Options struct {
	// Root is the store directory, e.g. /var/lib/nodekit/images. Created if missing.
	Root string
	// Platform selects the image from a multi-platform index. Default linux/GOARCH.
	Platform *v1.Platform
	// Transport is the base HTTP transport for pulls. Default remote.DefaultTransport.
	Transport http.RoundTripper
	// Logger receives pull progress and warnings. Default slog.Default().
	Logger *slog.Logger
	// RegistryConfig is the registry configuration file (mirrors, insecure
	// registries; see the README): read at each pull, so edits apply without a
	// restart. Empty, or a file that does not exist, means no mirrors.
	RegistryConfig string
}

// Image is one image in the store.
type Image struct {
	// ID is "sha256:<config digest hex>", the CRI image id.
	ID string `json:"id"`
	// RepoTags are normalized references: "docker.io/library/busybox:latest".
	RepoTags []string `json:"repoTags,omitempty"`
	// RepoDigests are "repo@sha256:<manifest or index digest>".
	RepoDigests []string `json:"repoDigests,omitempty"`
	// Size is the unpacked disk usage of the image's layers (shared layers counted in
	// every image that uses them).
	Size uint64 `json:"size"`
	// Config is the runtime configuration from the image config.
	Config ocispec.ImageConfig `json:"config"`
	// Layers are the diffIDs ("sha256:...") of the layers, base first.
	Layers []string `json:"layers"`
	// Created is the image creation time from its config, zero if absent.
	Created time.Time `json:"created,omitzero"`
}

// Usage is the disk usage of the store (CRI ImageFsInfo).
type Usage struct {
	Mountpoint            string
	UsedBytes, InodesUsed uint64
}

// record is the on-disk form of an image: images/<hex>.json.
type record struct {
	Image
	// Blobs are the digests of the manifests, indexes and config this image came
	// from; GC keeps them while the image exists.
	Blobs []string `json:"blobs,omitempty"`
}

// layerMeta is layers/<hex>/meta.json.
type layerMeta struct {
	DiffID string `json:"diffID"`
	Bytes  int64  `json:"bytes"`
	Inodes int64  `json:"inodes"`
}

// Store is an image store rooted at a directory. Its methods are safe for concurrent
// use, also by several processes sharing the directory.
type Store struct {
	root       string
	platform   v1.Platform
	transport  http.RoundTripper
	registries *registryFile
	log        *slog.Logger
	lock       *os.File // the store's flock file

	mu  sync.Mutex // serializes this process's use of lock and guards idx
	idx index

	flightMu sync.Mutex
	flights  map[string]*flight // layer unpacks in progress in this process, by diffID hex
}

// index is the in-memory view of images/ and layers/ at one generation.
type index struct {
	loaded bool
	gen    uint64
	images map[string]*record   // by ID
	layers map[string]layerMeta // by diffID hex
}

// New opens (creating if needed) the store at opts.Root.
func New(opts Options) (*Store, error) {
	if opts.Root == "" {
		return nil, errors.New("image store: Options.Root is empty")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	for _, d := range []string{"blobs/sha256", "layers", "images", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(root, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	s := &Store{
		root:       root,
		platform:   v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		transport:  opts.Transport,
		registries: &registryFile{path: opts.RegistryConfig},
		log:        opts.Logger,
		lock:       lock,
		flights:    map[string]*flight{},
	}
	if opts.Platform != nil {
		s.platform = *opts.Platform
	}
	if s.transport == nil {
		s.transport = remote.DefaultTransport
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.view(func(*index) error { return nil }); err != nil {
		lock.Close()
		return nil, err
	}
	if _, err := s.registries.load(); err != nil {
		// Not fatal: pulls report it until the file is fixed.
		s.log.Warn("registry configuration is invalid; pulls fail until it is fixed", "err", err)
	}
	return s, nil
}

// Close releases the store's lock file. In-flight calls must have returned.
func (s *Store) Close() error {
	return s.lock.Close()
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

func (s *Store) layerDir(hex string) string  { return s.path("layers", hex) }
func (s *Store) recordPath(id string) string { return s.path("images", hexOf(id)+".json") }
func (s *Store) blobPath(d string) string    { return s.path("blobs", "sha256", hexOf(d)) }

// hexOf strips the "sha256:" prefix.
func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

// readGen reads the generation counter; a missing file is generation 0.
func (s *Store) readGen() (uint64, error) {
	b, err := os.ReadFile(s.path("generation"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("image store: %w", err)
	}
	g, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("image store: generation file: %w", err)
	}
	return g, nil
}

// view runs fn on an index that is current with the disk. The cheap check is one
// read of the generation file; the index is reloaded under a shared lock when another
// process (or an interrupted mutation) moved it.
func (s *Store) view(fn func(ix *index) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.readGen()
	if err != nil {
		return err
	}
	if !s.idx.loaded || g != s.idx.gen {
		if err := flock(s.lock, lockShared); err != nil {
			return fmt.Errorf("image store: lock: %w", err)
		}
		err := s.reload()
		if uerr := flock(s.lock, lockNone); err == nil && uerr != nil {
			err = fmt.Errorf("image store: unlock: %w", uerr)
		}
		if err != nil {
			return err
		}
	}
	return fn(&s.idx)
}

// mutate runs fn with the store locked exclusively and the index current. fn changes
// the disk and the index in step and reports whether it changed anything; the
// generation is then bumped so that other processes reload.
func (s *Store) mutate(fn func(ix *index) (changed bool, err error)) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := flock(s.lock, lockExclusive); err != nil {
		return fmt.Errorf("image store: lock: %w", err)
	}
	defer func() {
		if uerr := flock(s.lock, lockNone); err == nil && uerr != nil {
			err = fmt.Errorf("image store: unlock: %w", uerr)
		}
	}()
	g, err := s.readGen()
	if err != nil {
		return err
	}
	if !s.idx.loaded || g != s.idx.gen {
		if err := s.reload(); err != nil {
			return err
		}
	}
	changed, err := fn(&s.idx)
	if !changed && err == nil {
		return nil
	}
	next := s.idx.gen + 1
	werr := atomicfile.WriteFile(s.path("generation"), []byte(strconv.FormatUint(next, 10)+"\n"), 0o600)
	if err != nil || werr != nil {
		s.idx.loaded = false // the disk may hold part of fn's work: reload next time
		return errors.Join(err, werr)
	}
	s.idx.gen = next
	return nil
}

// reload reads images/ and layers/ into s.idx. The caller holds the flock.
func (s *Store) reload() error {
	g, err := s.readGen()
	if err != nil {
		return err
	}
	ix := index{loaded: true, gen: g, images: map[string]*record{}, layers: map[string]layerMeta{}}
	ents, err := os.ReadDir(s.path("images"))
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue // atomicfile temporaries
		}
		var r record
		if err := atomicfile.ReadJSON(filepath.Join(s.path("images"), n), &r); err != nil {
			return fmt.Errorf("image store: image record: %w", err)
		}
		ix.images[r.ID] = &r
	}
	ents, err = os.ReadDir(s.path("layers"))
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	for _, e := range ents {
		var m layerMeta
		err := atomicfile.ReadJSON(filepath.Join(s.layerDir(e.Name()), "meta.json"), &m)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not a layer (layers are renamed into place complete)
		}
		if err != nil {
			return fmt.Errorf("image store: layer %s: %w", e.Name(), err)
		}
		ix.layers[e.Name()] = m
	}
	s.idx = ix
	return nil
}

func (r *record) copyImage() Image {
	img := r.Image
	img.RepoTags = slices.Clone(r.RepoTags)
	img.RepoDigests = slices.Clone(r.RepoDigests)
	img.Layers = slices.Clone(r.Layers)
	return img
}

// Get returns the image named by ref: an ID ("sha256:<hex>", bare hex or a unique hex
// prefix), a tag ("busybox" is "docker.io/library/busybox:latest") or a digest
// reference ("repo@sha256:..."). Unknown references wrap ErrNotFound.
func (s *Store) Get(ref string) (Image, error) {
	var img Image
	err := s.view(func(ix *index) error {
		r, err := ix.find(ref)
		if err != nil {
			return err
		}
		img = r.copyImage()
		return nil
	})
	return img, err
}

// List returns all images, ordered by ID.
func (s *Store) List() ([]Image, error) {
	var out []Image
	err := s.view(func(ix *index) error {
		for _, r := range ix.images {
			out = append(out, r.copyImage())
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Image) int { return strings.Compare(a.ID, b.ID) })
	return out, err
}

// Remove deletes the image ref resolves to, with all its tags and digests (containerd
// CRI semantics). Its layers and blobs stay until GC. An unknown ref is not an error.
func (s *Store) Remove(ref string) error {
	return s.mutate(func(ix *index) (bool, error) {
		r, err := ix.find(ref)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if err := os.Remove(s.recordPath(r.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("remove image %s: %w", r.ID, err)
		}
		delete(ix.images, r.ID)
		return true, atomicfile.SyncDir(s.path("images"))
	})
}

// LayerDirs returns the absolute unpacked directories of img's layers, base first:
// the overlayfs lowerdirs (in reverse order) of a container's rootfs.
func (s *Store) LayerDirs(img Image) ([]string, error) {
	dirs := make([]string, 0, len(img.Layers))
	for _, l := range img.Layers {
		d := filepath.Join(s.layerDir(hexOf(l)), "fs")
		if _, err := os.Lstat(d); err != nil {
			return nil, fmt.Errorf("image %s: layer %s: %w (%w)", img.ID, l, ErrNotFound, err)
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

// Usage returns the disk usage of the unpacked layers, from their meta.json records.
func (s *Store) Usage() (Usage, error) {
	u := Usage{Mountpoint: s.root}
	err := s.view(func(ix *index) error {
		for _, m := range ix.layers {
			u.UsedBytes += uint64(m.Bytes)
			u.InodesUsed += uint64(m.Inodes)
		}
		return nil
	})
	return u, err
}

// GC deletes the layers no image references, unless a pull or import in progress
// holds them or inUse("sha256:<hex>") says a container still uses them, and the blobs
// no image references. It also clears work directories left by crashed processes.
// inUse is called with the store locked: it must not call back into the Store.
func (s *Store) GC(ctx context.Context, inUse func(diffID string) bool) error {
	trash, err := s.newWork()
	if err != nil {
		return err
	}
	defer trash.close()
	var removedLayers, removedBlobs int
	err = s.mutate(func(ix *index) (bool, error) {
		keepLayers := map[string]bool{}
		keepBlobs := map[string]bool{}
		for _, r := range ix.images {
			for _, l := range r.Layers {
				keepLayers[hexOf(l)] = true
			}
			for _, b := range r.Blobs {
				keepBlobs[hexOf(b)] = true
			}
		}
		changed := false
		held, err := s.sweepWork(trash)
		if err != nil {
			return changed, err
		}
		ents, err := os.ReadDir(s.path("layers"))
		if err != nil {
			return changed, fmt.Errorf("gc: %w", err)
		}
		for _, e := range ents {
			hex := e.Name()
			if keepLayers[hex] || held[hex] || (inUse != nil && inUse("sha256:"+hex)) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return changed, fmt.Errorf("gc: %w", err)
			}
			if err := os.Rename(s.layerDir(hex), filepath.Join(trash.dir, "layer-"+hex)); err != nil {
				return changed, fmt.Errorf("gc: layer %s: %w", hex, err)
			}
			delete(ix.layers, hex)
			changed = true
			removedLayers++
		}
		ents, err = os.ReadDir(s.path("blobs", "sha256"))
		if err != nil {
			return changed, fmt.Errorf("gc: %w", err)
		}
		for _, e := range ents {
			if keepBlobs[e.Name()] {
				continue
			}
			if err := os.Remove(s.path("blobs", "sha256", e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return changed, fmt.Errorf("gc: blob %s: %w", e.Name(), err)
			}
			removedBlobs++
		}
		return changed, nil
	})
	if removedLayers+removedBlobs > 0 {
		s.log.Info("image gc", "layers", removedLayers, "blobs", removedBlobs)
	}
	return err
}
