package main

import (
	"context"
	"fmt"
	"log"
	"time"
)

// The archives this program writes, the names they import under, and the
// creation time they carry when SOURCE_DATE_EPOCH is unset.
func Example() {
	for _, c := range catalog {
		fmt.Printf("%s.tar %s\n", c.name, c.ref)
	}
	created, err := CreatedTime("")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created", created.Format(time.RFC3339))
	// Output:
	// busybox.tar nodekit.local/busybox:latest
	// web.tar nodekit.local/web:latest
	// pause.tar nodekit.local/pause:latest
	// created 2026-01-01T00:00:00Z
}

// Building only the web image (it carries the busybox layer too) from Debian's
// busybox-static, as `go run ./examples/images -out _output/images -only web`.
func ExampleBuild() {
	results, err := Build(context.Background(), Options{OutDir: "_output/images", Only: "web"})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Println(r.Path, r.Ref, r.ManifestDigest)
	}
}
