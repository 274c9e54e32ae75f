//go:build linux

package image_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
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
	tarball.Write(tag, img, &archive)

	imported, err := store.Import(context.Background(), io.MultiReader(&archive)) // any stream
	if err != nil {
		fmt.Println(err)
		return
	}
	got, _ := store.Get("hello") // == docker.io/library/hello:latest
	dirs, _ := store.LayerDirs(got)
	fmt.Println(len(imported), got.RepoTags, got.ID == imported[0].ID, len(dirs))

	store.Remove("hello")
	store.GC(context.Background(), nil)
	usage, _ := store.Usage()
	fmt.Println(usage.UsedBytes)
	// Output:
	// 1 [docker.io/library/hello:latest] true 2
	// 0
}
