package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
)

// DefaultCreated is the creation time written into every image (config,
// history and every tar entry) when SOURCE_DATE_EPOCH is not set.
const DefaultCreated = "2026-01-01T00:00:00Z"

// Options says which images to build, from what, and where to.
type Options struct {
	OutDir  string    // directory for NAME.tar (created if missing)
	Only    string    // comma-separated image names; empty builds all
	Busybox string    // path of a static busybox binary (default /bin/busybox)
	CC      string    // C compiler for pause (default gcc)
	Created time.Time // image creation time; zero means DefaultCreated
}

// Result describes one archive written by Build.
type Result struct {
	Name           string // short name: busybox, web, pause
	Ref            string // full image name, e.g. nodekit.local/web:latest
	Path           string // archive file written
	ArchiveDigest  string // sha256 of the archive file
	ManifestDigest string // digest of the image manifest inside it
}

// catalog lists the images this program builds, in build order.
var catalog = []struct {
	name string
	ref  string
}{
	{"busybox", "nodekit.local/busybox:latest"},
	{"web", "nodekit.local/web:latest"},
	{"pause", "nodekit.local/pause:latest"},
}

// defaultPath is the PATH of every image, the one Docker and containerd use.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// CreatedTime returns the image creation time for a SOURCE_DATE_EPOCH value:
// DefaultCreated when it is empty, else those Unix seconds in UTC.
func CreatedTime(sourceDateEpoch string) (time.Time, error) {
	if sourceDateEpoch == "" {
		return time.Parse(time.RFC3339, DefaultCreated)
	}
	secs, err := strconv.ParseInt(sourceDateEpoch, 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want non-negative Unix seconds", sourceDateEpoch)
	}
	return time.Unix(secs, 0).UTC(), nil
}

// selectImages resolves Options.Only into catalog names, in catalog order.
func selectImages(only string) ([]string, error) {
	var all []string
	for _, c := range catalog {
		all = append(all, c.name)
	}
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for n := range strings.SplitSeq(only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(all, n) {
			return nil, fmt.Errorf("-only: unknown image %q (known: %s)", n, strings.Join(all, ", "))
		}
		want[n] = true
	}
	var names []string
	for _, n := range all {
		if want[n] {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("-only %q names no image", only)
	}
	return names, nil
}

// Build writes the selected image archives into opts.OutDir and describes them.
func Build(ctx context.Context, opts Options) ([]Result, error) {
	names, err := selectImages(opts.Only)
	if err != nil {
		return nil, err
	}
	if opts.Busybox == "" {
		opts.Busybox = "/bin/busybox"
	}
	if opts.CC == "" {
		opts.CC = "gcc"
	}
	if opts.Created.IsZero() {
		if opts.Created, err = CreatedTime(""); err != nil {
			return nil, err
		}
	}
	created := opts.Created.UTC()

	var (
		busybox, web, pause layer
		bbArch, pauseArch   string
	)
	if slices.Contains(names, "busybox") || slices.Contains(names, "web") {
		if bbArch, busybox, err = busyboxLayer(ctx, opts.Busybox, created); err != nil {
			return nil, err
		}
	}
	if slices.Contains(names, "web") {
		if web, err = webLayer(created); err != nil {
			return nil, err
		}
	}
	if slices.Contains(names, "pause") {
		if pauseArch, pause, err = pauseLayer(ctx, opts.CC, created); err != nil {
			return nil, err
		}
	}

	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	var results []Result
	for _, c := range catalog {
		if !slices.Contains(names, c.name) {
			continue
		}
		im := image{ref: c.ref, created: created, config: ocispec.ImageConfig{Env: []string{defaultPath}}}
		switch c.name {
		case "busybox":
			im.arch = bbArch
			im.config.Cmd = []string{"sh"}
			im.layers = []layer{busybox}
		case "web":
			im.arch = bbArch
			im.config.Entrypoint = []string{"httpd", "-f", "-v", "-p", "8080", "-h", "/www"}
			im.config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
			im.config.User = "www-data"
			im.config.WorkingDir = "/www"
			im.layers = []layer{busybox, web}
		case "pause":
			im.arch = pauseArch
			im.config.Entrypoint = []string{"/pause"}
			im.config.User = "65535:65535"
			im.layers = []layer{pause}
		}
		archive, manifestDigest, err := im.archive()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", c.ref, err)
		}
		path := filepath.Join(opts.OutDir, c.name+".tar")
		if err := atomicfile.WriteFile(path, archive, 0o644); err != nil {
			return nil, fmt.Errorf("image %s: %w", c.ref, err)
		}
		results = append(results, Result{
			Name:           c.name,
			Ref:            c.ref,
			Path:           path,
			ArchiveDigest:  digest.FromBytes(archive).String(),
			ManifestDigest: manifestDigest,
		})
	}
	return results, nil
}
