package image

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// reference is a normalized image reference: repo is "docker.io/library/busybox" (never
// index.docker.io), and exactly one of tag and digest is set.
type reference struct {
	repo   string
	tag    string
	digest string
}

// parseRef normalizes an image reference: a bare name gets docker.io/library/ and
// :latest; "docker.io" stays "docker.io".
func parseRef(s string) (reference, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return reference{}, fmt.Errorf("image reference %q: %w", s, err)
	}
	ctx := ref.Context()
	reg := ctx.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	r := reference{repo: reg + "/" + ctx.RepositoryStr()}
	switch v := ref.(type) {
	case name.Tag:
		r.tag = v.TagStr()
	case name.Digest:
		r.digest = v.DigestStr()
	}
	return r, nil
}

// String is "repo:tag" or "repo@sha256:...".
func (r reference) String() string {
	if r.digest != "" {
		return r.repo + "@" + r.digest
	}
	return r.repo + ":" + r.tag
}

// withDigest is the repo digest "repo@<d>".
func (r reference) withDigest(d string) string { return r.repo + "@" + d }

// fullRef reports whether an org.opencontainers.image.ref.name annotation is a full
// image reference ("busybox:1.36", "example.com/app") rather than a bare tag ("latest").
func fullRef(s string) bool {
	return strings.ContainsAny(s, "/:@")
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// find resolves ref as an image ID, then a tag or digest reference, then a unique ID
// prefix.
func (ix *index) find(ref string) (*record, error) {
	s := strings.TrimSpace(ref)
	h := strings.TrimPrefix(s, "sha256:")
	if len(h) == 64 && isHex(h) {
		if r := ix.images["sha256:"+h]; r != nil {
			return r, nil
		}
	}
	if !strings.HasPrefix(s, "sha256:") && s != "" {
		if nr, err := parseRef(s); err == nil {
			key := nr.String()
			for _, r := range ix.images {
				list := r.RepoTags
				if nr.digest != "" {
					list = r.RepoDigests
				}
				for _, t := range list {
					if t == key {
						return r, nil
					}
				}
			}
		}
	}
	if isHex(h) {
		var match *record
		n := 0
		for id, r := range ix.images {
			if strings.HasPrefix(hexOf(id), h) {
				match = r
				n++
			}
		}
		if n == 1 {
			return match, nil
		}
		if n > 1 {
			return nil, fmt.Errorf("image reference %q is ambiguous: %d image IDs start with it", ref, n)
		}
	}
	return nil, fmt.Errorf("image %q: %w", ref, ErrNotFound)
}
