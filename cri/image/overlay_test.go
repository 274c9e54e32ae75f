//go:build linux

package image

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// TestLayerDirsMountAsOverlay imports an image whose second layer deletes a file
// (whiteout) and replaces a directory (opaque), then mounts its LayerDirs as a
// read-only overlay, as the runtime does for a container rootfs.
func TestLayerDirsMountAsOverlay(t *testing.T) {
	testenv.RequireRoot(t)
	lower := newLayer(t, types.OCILayer, map[string]string{
		"etc/": "", "etc/keep": "k", "etc/drop": "d", "var/": "", "var/cache/": "", "var/cache/old": "o",
	})
	upper := newLayer(t, types.OCILayerZStd, map[string]string{
		"etc/": "", "etc/.wh.drop": "", "var/": "", "var/cache/": "", "var/cache/.wh..wh..opq": "", "var/cache/new": "n",
	})
	img := newImage(t, v1.Config{}, nil, lower, upper)
	s := newStore(t, t.TempDir())
	imgs, err := s.Import(context.Background(), ociTar(t, ociEntry{img: img, ann: map[string]string{annotationContainerdName: "overlay:1"}}))
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := s.LayerDirs(imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(dirs) // overlay wants the top layer first
	merged := t.TempDir()
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(dirs, ":")); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	for dir, want := range map[string][]string{"etc": {"keep"}, "var/cache": {"new"}} {
		if got := dirNames(t, filepath.Join(merged, dir)); !slices.Equal(got, want) {
			t.Errorf("merged %s = %v, want %v", dir, got, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(merged, "var/cache/new")); err != nil || string(b) != "n" {
		t.Errorf("var/cache/new = %q, %v", b, err)
	}
}
