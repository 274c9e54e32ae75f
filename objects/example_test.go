package objects_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/nodekit-dev/nodekit/objects"
)

// A directory of manifests: a valid ConfigMap is served, an invalid one is
// reported with its file, document, object and field.
func Example() {
	dir, _ := os.MkdirTemp("", "objects-example-")
	defer os.RemoveAll(dir)
	err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(`apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  namespace: shop
data:
  nginx.conf: |
    worker_processes 2;
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: broken
data:
  bad/key: x
`), 0o644)
	if err != nil {
		fmt.Println(err)
		return
	}

	src, err := objects.NewDir(objects.DirOptions{Path: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	cm, _ := src.ConfigMap(ctx, "shop", "web")
	fmt.Printf("shop/web nginx.conf: %s", cm.Data["nginx.conf"])
	_, err = src.ConfigMap(ctx, "default", "broken")
	fmt.Println("default/broken not found:", apierrors.IsNotFound(err))
	for _, err := range src.Errors() {
		var fe *objects.FileError
		errors.As(err, &fe)
		fmt.Printf("%s, document %d, %v:\n", filepath.Base(fe.File), fe.Document, fe.Ref)
		fmt.Println(strings.TrimPrefix(err.Error(), dir+string(filepath.Separator)))
	}
	// Output:
	// shop/web nginx.conf: worker_processes 2;
	// default/broken not found: true
	// web.yaml, document 2, ConfigMap default/broken:
	// web.yaml: document 2: ConfigMap default/broken: data[bad/key]: Invalid value: "bad/key": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')
}

// An in-memory source: subscribers hear of each change.
func ExampleStatic() {
	src := objects.NewStatic()
	cancel := src.Subscribe(func(r objects.Ref) { fmt.Println("changed:", r) })
	defer cancel()

	sec := &v1.Secret{StringData: map[string]string{"password": "s3cret"}}
	sec.Name = "db"
	src.SetSecret(sec) // namespace "default", stringData merged into data
	src.SetSecret(sec) // the same content: no notification
	got, _ := src.Secret(context.Background(), "default", "db")
	fmt.Printf("%s %s\n", got.Type, got.Data["password"])
	src.Delete(objects.Ref{Kind: objects.KindSecret, Namespace: "default", Name: "db"})
	// Output:
	// changed: Secret default/db
	// Opaque s3cret
	// changed: Secret default/db
}
