package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxSmallBlob bounds manifests, indexes and configs read into memory.
const maxSmallBlob = 16 << 20

// fetcher reads the blobs of one image source: a registry repository or an unpacked
// OCI layout.
type fetcher interface {
	// manifest returns a manifest or index by digest, blob a config blob (both
	// unverified: the caller checks the digest).
	manifest(ctx context.Context, d v1.Hash) ([]byte, error)
	blob(ctx context.Context, d v1.Hash) ([]byte, error)
	// open streams a layer blob (the caller verifies the digest while reading).
	open(ctx context.Context, d v1.Hash) (io.ReadCloser, error)
}

// verifyBlob checks that b has digest d.
func verifyBlob(d v1.Hash, b []byte) error {
	if d.Algorithm != "sha256" {
		return fmt.Errorf("blob %s: unsupported digest algorithm", d)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != d.Hex {
		return fmt.Errorf("blob %s: digest mismatch: content is sha256:%s", d, got)
	}
	return nil
}

func readSmall(r io.Reader, d v1.Hash) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSmallBlob+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if len(b) > maxSmallBlob {
		return nil, fmt.Errorf("blob %s: larger than %d bytes", d, maxSmallBlob)
	}
	return b, nil
}

// resolve walks from a top-level manifest or index (content b, already fetched) down to
// the image for platform and builds the candidate: verified manifests and config, and
// the layers to fetch.
func resolve(ctx context.Context, f fetcher, d v1.Descriptor, b []byte, platform v1.Platform) (*candidate, error) {
	c := &candidate{blobs: map[string][]byte{}}
	for depth := 0; ; depth++ {
		if depth > 4 {
			return nil, fmt.Errorf("blob %s: indexes nested too deep", d.Digest)
		}
		if err := verifyBlob(d.Digest, b); err != nil {
			return nil, err
		}
		c.blobs[d.Digest.String()] = b
		switch kind := manifestKind(d.MediaType, b); kind {
		case types.OCIImageIndex, types.DockerManifestList:
			var idx v1.IndexManifest
			if err := json.Unmarshal(b, &idx); err != nil {
				return nil, fmt.Errorf("index %s: %w", d.Digest, err)
			}
			child, ok := pickPlatform(idx.Manifests, platform)
			if !ok {
				return nil, fmt.Errorf("index %s: no image for platform %s", d.Digest, platform.String())
			}
			cb, err := f.manifest(ctx, child.Digest)
			if err != nil {
				return nil, fmt.Errorf("manifest %s: %w", child.Digest, err)
			}
			d, b = child, cb
		case types.OCIManifestSchema1, types.DockerManifestSchema2:
			return c, c.fromManifest(ctx, f, d.Digest, b)
		default:
			return nil, fmt.Errorf("manifest %s: unsupported media type %q", d.Digest, kind)
		}
	}
}

// manifestKind is the media type of a manifest, from its descriptor or, failing that,
// its content.
func manifestKind(mt types.MediaType, b []byte) types.MediaType {
	switch mt {
	case types.OCIImageIndex, types.DockerManifestList, types.OCIManifestSchema1, types.DockerManifestSchema2:
		return mt
	}
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return mt
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return types.OCIImageIndex
	case probe.Config != nil:
		return types.OCIManifestSchema1
	}
	return mt
}

// pickPlatform returns the first manifest in an index whose platform satisfies want.
func pickPlatform(ms []v1.Descriptor, want v1.Platform) (v1.Descriptor, bool) {
	for _, m := range ms {
		if m.Platform != nil && m.Platform.Satisfies(want) {
			return m, true
		}
	}
	return v1.Descriptor{}, false
}

func (c *candidate) fromManifest(ctx context.Context, f fetcher, md v1.Hash, b []byte) error {
	var m v1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", md, err)
	}
	cb, err := f.blob(ctx, m.Config.Digest)
	if err != nil {
		return fmt.Errorf("manifest %s: config %s: %w", md, m.Config.Digest, err)
	}
	if err := verifyBlob(m.Config.Digest, cb); err != nil {
		return fmt.Errorf("manifest %s: config: %w", md, err)
	}
	if err := c.setConfig(m.Config.Digest, cb); err != nil {
		return err
	}
	diffIDs := c.config.RootFS.DiffIDs
	if len(diffIDs) != len(m.Layers) {
		return fmt.Errorf("manifest %s: %d layers but config %s lists %d diffIDs", md, len(m.Layers), m.Config.Digest, len(diffIDs))
	}
	for i, l := range m.Layers {
		diffID, err := v1.NewHash(diffIDs[i].String())
		if err != nil {
			return fmt.Errorf("config %s: diffID %d: %w", m.Config.Digest, i, err)
		}
		blob := l.Digest
		c.layers = append(c.layers, layerSource{
			diffID:    diffID,
			blob:      blob,
			mediaType: string(l.MediaType),
			open:      func(ctx context.Context) (io.ReadCloser, error) { return f.open(ctx, blob) },
		})
	}
	return nil
}

// setConfig parses a verified config blob.
func (c *candidate) setConfig(d v1.Hash, b []byte) error {
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&c.config); err != nil {
		return fmt.Errorf("config %s: %w", d, err)
	}
	for _, id := range c.config.RootFS.DiffIDs {
		if _, err := v1.NewHash(id.String()); err != nil {
			return fmt.Errorf("config %s: diffID %q: %w", d, id, err)
		}
	}
	c.configID = d.String()
	c.blobs[d.String()] = b
	return nil
}
