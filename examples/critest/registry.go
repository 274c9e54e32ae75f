package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// localRegistry is an in-memory registry (go-containerregistry's pkg/registry)
// served on 127.0.0.1.
type localRegistry struct {
	host string // 127.0.0.1:port
	srv  *http.Server
	done chan error
}

func startRegistry() (*localRegistry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	r := &localRegistry{
		host: l.Addr().String(),
		srv: &http.Server{
			Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
			ReadHeaderTimeout: 10 * time.Second,
		},
		done: make(chan error, 1),
	}
	go func() { r.done <- r.srv.Serve(l) }()
	return r, nil
}

func (r *localRegistry) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	if serr := <-r.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// push uploads the images under all their repository:tag paths.
func (r *localRegistry) push(ctx context.Context, images []testImage) error {
	for _, ti := range images {
		for i, ref := range ti.refs {
			tag, err := name.NewTag(r.host+"/"+ref, name.Insecure)
			if err != nil {
				return err
			}
			if i == 0 {
				err = remote.Write(tag, ti.img, remote.WithContext(ctx))
			} else {
				err = remote.Tag(tag, ti.img, remote.WithContext(ctx))
			}
			if err != nil {
				return fmt.Errorf("push %s: %w", tag, err)
			}
		}
	}
	return nil
}

// mirrorsConfig is nodekit's registry configuration sending critest's upstream
// registries to the local registry, and nowhere else.
func mirrorsConfig(host string) string {
	var b strings.Builder
	b.WriteString("# Written by examples/critest: critest's registries are served by its local registry.\n")
	for _, reg := range upstreamRegistries {
		fmt.Fprintf(&b, "\n[registry.%q]\nmirrors = [\"http://%s\"]\nmirrors_only = true\n", reg, host)
	}
	return b.String()
}

// testImagesFile is critest's -test-images-file: the two images it lets a user
// replace, named here by the local registry directly.
func testImagesFile(host string) string {
	return fmt.Sprintf("defaultTestContainerImage: %s/%s\nwebServerTestImage: %s/%s\n", host, busyboxRef, host, nginxRef)
}
