package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nodekit-dev/nodekit/internal/ctxio"
)

// Annotations naming the images of an OCI layout (containerd's, then the OCI one).
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// Import reads an image archive from r and stores its images: an OCI image layout tar
// (index.json; names from the io.containerd.image.name annotation, else
// org.opencontainers.image.ref.name when it is a full reference) or a docker-archive
// tar (`docker save`: manifest.json with RepoTags). r is read once, as a stream: the
// archive is spooled (extracted) under tmp/ for random access. A tag an imported
// image carries is taken from the image that had it; images left without tags stay.
func (s *Store) Import(ctx context.Context, r io.Reader) ([]Image, error) {
	start := time.Now()
	w, err := s.newWork()
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer w.close()
	dir := filepath.Join(w.dir, "archive")
	if err := extract(ctx, r, dir); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer root.Close()

	var cands []*candidate
	switch {
	case exists(root, "index.json"):
		cands, err = s.ociCandidates(ctx, root)
	case exists(root, "manifest.json"):
		cands, err = dockerCandidates(root)
	default:
		err = errors.New("archive is neither an OCI image layout (index.json) nor a docker archive (manifest.json)")
	}
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("import: no image for platform %s in the archive", s.platform.String())
	}
	var ids []string
	var read int64
	for _, c := range cands {
		img, n, err := s.ingest(ctx, w, c)
		read += n
		if err != nil {
			return nil, fmt.Errorf("import: image %s: %w", c.configID, err)
		}
		ids = append(ids, img.ID)
	}
	// Later images of the archive may have taken tags from earlier ones: report the
	// final state.
	out := make([]Image, 0, len(ids))
	for _, id := range ids {
		img, err := s.Get(id)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		out = append(out, img)
	}
	s.log.Info("imported images", "images", len(out), "bytes", read, "duration", time.Since(start).Round(time.Millisecond))
	return out, nil
}

func exists(root *os.Root, name string) bool {
	_, err := root.Stat(name)
	return err == nil
}

// extract spools a tar stream into dir: regular files, directories, symbolic and hard
// links (docker save links duplicate layers), confined to dir by os.Root.
func extract(ctx context.Context, r io.Reader, dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(ctxio.NewReader(ctx, r))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name := path.Clean(hdr.Name)
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("archive entry %q: path escapes the archive", hdr.Name)
		}
		if name == "." {
			continue
		}
		if d := path.Dir(name); d != "." && hdr.Typeflag != tar.TypeDir {
			if err := root.MkdirAll(d, 0o700); err != nil {
				return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o700)
		case tar.TypeReg:
			var f *os.File
			if f, err = root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600); err == nil {
				_, err = io.Copy(f, tr)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		case tar.TypeSymlink:
			_ = root.Remove(name) // an earlier entry of that name, if any: Symlink reports one left
			err = root.Symlink(hdr.Linkname, name)
		case tar.TypeLink:
			_ = root.Remove(name) // likewise
			err = root.Link(path.Clean(hdr.Linkname), name)
		}
		if err != nil {
			return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
	}
	// Drain the stream so a caller hashing it sees everything.
	_, err = io.Copy(io.Discard, ctxio.NewReader(ctx, r))
	return err
}

// ociCandidates reads an OCI image layout's index.json. Descriptors for the same
// manifest are merged; those whose platform does not match are skipped.
func (s *Store) ociCandidates(ctx context.Context, root *os.Root) ([]*candidate, error) {
	b, err := readRootFile(root, "index.json")
	if err != nil {
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	f := &dirFetcher{root: root}
	type entry struct {
		desc  v1.Descriptor
		names []reference
	}
	var order []string
	byDigest := map[string]*entry{}
	for _, d := range idx.Manifests {
		if d.Platform != nil && !d.Platform.Satisfies(s.platform) {
			continue
		}
		e := byDigest[d.Digest.String()]
		if e == nil {
			e = &entry{desc: d}
			byDigest[d.Digest.String()] = e
			order = append(order, d.Digest.String())
		}
		n := d.Annotations[annotationContainerdName]
		if n == "" && fullRef(d.Annotations[annotationRefName]) {
			n = d.Annotations[annotationRefName]
		}
		if n == "" {
			continue
		}
		nr, err := parseRef(n)
		if err != nil {
			return nil, fmt.Errorf("index.json: manifest %s: %w", d.Digest, err)
		}
		e.names = append(e.names, nr)
	}
	var out []*candidate
	for _, k := range order {
		e := byDigest[k]
		mb, err := f.manifest(ctx, e.desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", e.desc.Digest, err)
		}
		c, err := resolve(ctx, f, e.desc, mb, s.platform)
		if err != nil {
			return nil, err
		}
		for _, nr := range e.names {
			if nr.tag != "" {
				c.tags = union(c.tags, []string{nr.String()})
			}
			c.digests = union(c.digests, []string{nr.withDigest(e.desc.Digest.String())})
		}
		out = append(out, c)
	}
	return out, nil
}

// dirFetcher reads the blobs of an OCI image layout.
type dirFetcher struct{ root *os.Root }

func blobName(d v1.Hash) string { return path.Join("blobs", d.Algorithm, d.Hex) }

func (f *dirFetcher) manifest(_ context.Context, d v1.Hash) ([]byte, error) {
	return readRootFile(f.root, blobName(d))
}

func (f *dirFetcher) blob(_ context.Context, d v1.Hash) ([]byte, error) {
	return readRootFile(f.root, blobName(d))
}

func (f *dirFetcher) open(_ context.Context, d v1.Hash) (io.ReadCloser, error) {
	return f.root.Open(blobName(d))
}

func readRootFile(root *os.Root, name string) ([]byte, error) {
	fh, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSmallBlob+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxSmallBlob {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxSmallBlob)
	}
	return b, nil
}

// dockerManifest is one entry of a docker-archive manifest.json.
type dockerManifest struct {
	Config       string
	RepoTags     []string
	Layers       []string
	LayerSources map[string]v1.Descriptor `json:",omitempty"`
}

// digestInName finds the digest a docker-archive file is named after:
// "blobs/sha256/<hex>" (docker 25+), "<hex>.json" (older docker), "sha256:<hex>" and
// "<hex>.tar.gz" (go-containerregistry).
// Old docker archives name layers "<v1 id>/layer.tar", which is no digest.
var digestInName = regexp.MustCompile(`^(?:blobs/sha256/|sha256:)?([0-9a-f]{64})(?:\.json|\.tar|\.tar\.gz|\.tar\.zst)?$`)

func nameDigest(p string) (v1.Hash, bool) {
	m := digestInName.FindStringSubmatch(path.Clean(p))
	if m == nil {
		return v1.Hash{}, false
	}
	return v1.Hash{Algorithm: "sha256", Hex: m[1]}, true
}

// dockerCandidates reads a docker-archive manifest.json.
func dockerCandidates(root *os.Root) ([]*candidate, error) {
	b, err := readRootFile(root, "manifest.json")
	if err != nil {
		return nil, err
	}
	var ms []dockerManifest
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var out []*candidate
	for _, m := range ms {
		cb, err := readRootFile(root, m.Config)
		if err != nil {
			return nil, fmt.Errorf("manifest.json: config: %w", err)
		}
		sum := sha256.Sum256(cb)
		cd := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
		if want, ok := nameDigest(m.Config); ok && want != cd {
			return nil, fmt.Errorf("config blob %s (%s): digest mismatch: content is %s", want, m.Config, cd)
		}
		c := &candidate{blobs: map[string][]byte{}}
		if err := c.setConfig(cd, cb); err != nil {
			return nil, err
		}
		diffIDs := c.config.RootFS.DiffIDs
		if len(diffIDs) != len(m.Layers) {
			return nil, fmt.Errorf("image %s: manifest.json lists %d layers, config %d diffIDs", cd, len(m.Layers), len(diffIDs))
		}
		for i, p := range m.Layers {
			diffID, err := v1.NewHash(diffIDs[i].String())
			if err != nil {
				return nil, fmt.Errorf("config %s: %w", cd, err)
			}
			blob, _ := nameDigest(p)
			var mt string
			if blob.Hex != "" {
				mt = string(m.LayerSources[blob.String()].MediaType)
			}
			p := p
			c.layers = append(c.layers, layerSource{
				diffID:    diffID,
				blob:      blob,
				mediaType: mt,
				open:      func(context.Context) (io.ReadCloser, error) { return root.Open(p) },
			})
		}
		for _, t := range m.RepoTags {
			nr, err := parseRef(t)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", cd, err)
			}
			if nr.tag != "" {
				c.tags = union(c.tags, []string{nr.String()})
			}
		}
		out = append(out, c)
	}
	return out, nil
}
