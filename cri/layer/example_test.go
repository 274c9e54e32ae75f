//go:build linux

package layer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nodekit-dev/nodekit/cri/layer"
)

func Example() {
	// A layer with one file, and one that tries to climb out of its directory.
	mk := func(name, body string) *bytes.Buffer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			panic(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			panic(err)
		}
		if err := tw.Close(); err != nil {
			panic(err)
		}
		return &buf
	}
	tmp, _ := os.MkdirTemp("", "layer-example")
	defer os.RemoveAll(tmp)

	good := filepath.Join(tmp, "good")
	if err := os.Mkdir(good, 0o755); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := layer.Apply(context.Background(), good, mk("etc/hostname", "web\n"), layer.Options{}); err != nil {
		fmt.Println(err)
	}
	b, _ := os.ReadFile(filepath.Join(good, "etc/hostname"))
	fmt.Printf("etc/hostname: %q\n", b)

	evil := filepath.Join(tmp, "evil")
	if err := os.Mkdir(evil, 0o755); err != nil {
		fmt.Println(err)
		return
	}
	_, err := layer.Apply(context.Background(), evil, mk("../escaped", "x"), layer.Options{})
	var unsafe *layer.UnsafeEntryError
	fmt.Println(errors.As(err, &unsafe), err)
	// Output:
	// etc/hostname: "web\n"
	// true layer entry "../escaped": path escapes the layer root
}
