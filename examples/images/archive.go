package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // registers sha256 for go-digest
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Annotation keys containerd (and nodekit-cri) read the image name from.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = ocispec.AnnotationRefName // org.opencontainers.image.ref.name
)

// entry is one file system object of a tar stream. Every entry gets the same
// modification time; ownership is root unless uid/gid say otherwise.
type entry struct {
	name     string // slash-separated, relative, without a trailing slash
	typ      byte   // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	mode     int64  // permission bits, including sticky/setuid bits
	uid, gid int
	linkname string // symlink target
	data     []byte // regular file content
}

func dir(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }

func file(name string, mode int64, data []byte) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, data: data}
}

func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: target}
}

// writeTar returns a tar stream of entries, reproducibly: entries sorted by
// name (so a directory always precedes its contents), one fixed mtime, no
// user or group names, no access/change times, USTAR headers only. Every
// entry's parent directory must be an entry too, and names must be unique.
func writeTar(entries []entry, mtime time.Time) ([]byte, error) {
	sorted := make([]entry, len(entries))
	copy(sorted, entries)
	tarName := func(e entry) string {
		if e.typ == tar.TypeDir {
			return e.name + "/"
		}
		return e.name
	}
	sort.Slice(sorted, func(i, j int) bool { return tarName(sorted[i]) < tarName(sorted[j]) })

	dirs := map[string]bool{".": true}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, e := range sorted {
		if e.name == "" || path.Clean(e.name) != e.name || path.IsAbs(e.name) || e.name == ".." || strings.HasPrefix(e.name, "../") {
			return nil, fmt.Errorf("tar entry %q: not a clean relative path", e.name)
		}
		if i > 0 && sorted[i-1].name == e.name {
			return nil, fmt.Errorf("tar entry %q: duplicate", e.name)
		}
		if !dirs[path.Dir(e.name)] {
			return nil, fmt.Errorf("tar entry %q: parent directory %q is not in the layer", e.name, path.Dir(e.name))
		}
		if e.typ == tar.TypeDir {
			dirs[e.name] = true
		}
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     tarName(e),
			Linkname: e.linkname,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			Size:     int64(len(e.data)),
			ModTime:  mtime,
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar entry %q: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("tar entry %q: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar: %w", err)
	}
	return buf.Bytes(), nil
}

// layer is a gzip-compressed tar layer and the digest of its uncompressed tar.
type layer struct {
	blob      []byte
	diffID    digest.Digest
	createdBy string // history line for the image config
}

// newLayer builds a layer from entries. The gzip stream is reproducible: no
// file name, zero modification time, fixed OS byte and compression level.
func newLayer(entries []entry, mtime time.Time, createdBy string) (layer, error) {
	raw, err := writeTar(entries, mtime)
	if err != nil {
		return layer{}, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return layer{}, err
	}
	// The zero gzip.Header already means no name, no comment, mtime 0; pin
	// the OS byte explicitly rather than rely on the package default.
	zw.OS = 255 // unknown
	if _, err := zw.Write(raw); err != nil {
		return layer{}, fmt.Errorf("gzip layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return layer{}, fmt.Errorf("gzip layer: %w", err)
	}
	return layer{blob: buf.Bytes(), diffID: digest.FromBytes(raw), createdBy: createdBy}, nil
}

// image is everything one archive is made of.
type image struct {
	ref     string // full name with tag, e.g. nodekit.local/web:latest
	arch    string // GOARCH of the binaries in the layers
	created time.Time
	config  ocispec.ImageConfig
	layers  []layer
}

// dockerManifest is one entry of the manifest.json `docker save` writes.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// archive returns the image as an OCI image layout in a tar, with a docker
// manifest.json beside it pointing at the same blobs, and the manifest digest.
// JSON documents are marshalled from structs (fixed field order) and maps
// (sorted keys), so equal inputs give equal bytes.
func (im image) archive() ([]byte, string, error) {
	tag := im.ref[strings.LastIndex(im.ref, ":")+1:]
	if !strings.Contains(im.ref, ":") || strings.Contains(tag, "/") {
		return nil, "", fmt.Errorf("image name %q has no tag", im.ref)
	}
	platform := ocispec.Platform{Architecture: im.arch, OS: "linux"}
	blobs := map[digest.Digest][]byte{}
	blobPath := func(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

	cfg := ocispec.Image{
		Created:  &im.created,
		Platform: platform,
		Config:   im.config,
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
	}
	docker := dockerManifest{RepoTags: []string{im.ref}}
	for _, l := range im.layers {
		d := digest.FromBytes(l.blob)
		blobs[d] = l.blob
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		cfg.History = append(cfg.History, ocispec.History{Created: &im.created, CreatedBy: l.createdBy})
		manifest.Layers = append(manifest.Layers, ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageLayerGzip,
			Digest:    d,
			Size:      int64(len(l.blob)),
		})
		docker.Layers = append(docker.Layers, blobPath(d))
	}

	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("encode config: %w", err)
	}
	cfgDigest := digest.FromBytes(cfgJSON)
	blobs[cfgDigest] = cfgJSON
	manifest.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(cfgJSON))}
	docker.Config = blobPath(cfgDigest)

	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return nil, "", fmt.Errorf("encode manifest: %w", err)
	}
	manifestDigest := digest.FromBytes(manifestJSON)
	blobs[manifestDigest] = manifestJSON

	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{
			MediaType: ocispec.MediaTypeImageManifest,
			Digest:    manifestDigest,
			Size:      int64(len(manifestJSON)),
			Annotations: map[string]string{
				annotationImageName: im.ref,
				annotationRefName:   tag,
			},
			Platform: &platform,
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return nil, "", fmt.Errorf("encode index.json: %w", err)
	}
	dockerJSON, err := json.Marshal([]dockerManifest{docker})
	if err != nil {
		return nil, "", fmt.Errorf("encode manifest.json: %w", err)
	}
	layoutJSON, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return nil, "", fmt.Errorf("encode oci-layout: %w", err)
	}

	entries := []entry{
		dir("blobs", 0o755),
		dir("blobs/sha256", 0o755),
		file(ocispec.ImageLayoutFile, 0o644, layoutJSON),
		file(ocispec.ImageIndexFile, 0o644, indexJSON),
		file("manifest.json", 0o644, dockerJSON),
	}
	for d, b := range blobs {
		entries = append(entries, file(blobPath(d), 0o644, b))
	}
	out, err := writeTar(entries, im.created)
	if err != nil {
		return nil, "", err
	}
	return out, manifestDigest.String(), nil
}
