// Command images builds nodekit's sample and test container images as OCI
// archives, offline and reproducibly, from what is on the build machine:
// Debian's busybox-static (/bin/busybox) and gcc (for the pause binary).
//
//	go run ./examples/images -out _output/images            # all images
//	go run ./examples/images -out _output/images -only web  # one (or a comma list)
//
// It writes busybox.tar, web.tar and pause.tar: each an OCI image layout in a
// tar (oci-layout, index.json, blobs/sha256/...) plus a docker-compatible
// manifest.json, importable with `nodekit-cri import`, `ctr images import` or
// `docker load`. Rebuilding from the same inputs gives byte-identical archives;
// see README.md for why.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var opts Options
	flag.StringVar(&opts.OutDir, "out", "_output/images", "directory to write the image archives to")
	flag.StringVar(&opts.Only, "only", "", "build only these images (comma-separated: busybox, web, pause)")
	flag.StringVar(&opts.Busybox, "busybox", "/bin/busybox", "static busybox binary to put in the images (Debian package busybox-static)")
	flag.StringVar(&opts.CC, "cc", "gcc", "C compiler used to build the static pause binary")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "images: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}

	created, err := CreatedTime(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(2)
	}
	opts.Created = created

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := Build(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
	for _, r := range results {
		fmt.Printf("%s\t%s\tarchive %s\tmanifest %s\n", r.Path, r.Ref, r.ArchiveDigest, r.ManifestDigest)
	}
}
