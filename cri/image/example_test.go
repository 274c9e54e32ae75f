//go:build linux

package image_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/nodekit-dev/nodekit/cri/image"
)

func Example() {
	root, _ := os.MkdirTemp("", "images")
	defer os.RemoveAll(root)
	store, err := image.New(image.Options{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	// A docker archive (`docker save`) with a two-layer image tagged hello:latest.
	img, _ := random.Image(512, 2)
	tag, _ := name.NewTag("hello")
	var archive bytes.Buffer
	if err := tarball.Write(tag, img, &archive); err != nil {
		fmt.Println(err)
		return
	}

	imported, err := store.Import(context.Background(), io.MultiReader(&archive)) // any stream
	if err != nil {
		fmt.Println(err)
		return
	}
	got, _ := store.Get("hello") // == docker.io/library/hello:latest
	dirs, _ := store.LayerDirs(got)
	fmt.Println(len(imported), got.RepoTags, got.ID == imported[0].ID, len(dirs))

	if err := store.Remove("hello"); err != nil {
		fmt.Println(err)
		return
	}
	if err := store.GC(context.Background(), nil); err != nil {
		fmt.Println(err)
		return
	}
	usage, _ := store.Usage()
	fmt.Println(usage.UsedBytes)
	// Output:
	// 1 [docker.io/library/hello:latest] true 2
	// 0
}

// Pulling registry.k8s.io/pause:3.10 from a mirror on 127.0.0.1, as the registry
// configuration file says. The image keeps its upstream name.
func Example_mirror() {
	mirror := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer mirror.Close()
	host := strings.TrimPrefix(mirror.URL, "http://")
	img, _ := random.Image(512, 1)
	ref, _ := name.ParseReference(host + "/pause:3.10")
	if err := remote.Write(ref, img); err != nil {
		fmt.Println(err)
		return
	}

	dir, _ := os.MkdirTemp("", "images")
	defer os.RemoveAll(dir)
	config := filepath.Join(dir, "registries.toml")
	if err := os.WriteFile(config, []byte(`
[registry."registry.k8s.io"]
mirrors = ["http://`+host+`"]
mirrors_only = true
`), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	store, err := image.New(image.Options{Root: filepath.Join(dir, "store"), RegistryConfig: config, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	pulled, err := store.Pull(context.Background(), "registry.k8s.io/pause:3.10", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pulled.RepoTags)
	// Output:
	// [registry.k8s.io/pause:3.10]
}
