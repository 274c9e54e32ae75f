package containerdtest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nodekit-dev/nodekit/internal/containerdtest"
)

// A private containerd's config and the addresses it serves on.
func ExampleConfig() {
	cfg := containerdtest.Config{
		Dir:        "/tmp/nkac-1/ctd",
		Runc:       "/work/main/bin/runc",
		CNIConfDir: "/tmp/nkac-1/net.d",
		CNIBinDir:  "/usr/lib/cni",
	}
	fmt.Println(cfg.Address())
	fmt.Println(cfg.RuncRoot())
	fmt.Println(containerdtest.ShimSocket(cfg.Address(), containerdtest.Namespace, "3cc2d33a"))
	// Output:
	// /tmp/nkac-1/ctd/containerd.sock
	// /tmp/nkac-1/ctd/state/runc/k8s.io
	// /run/containerd/s/99f6d6948e33c028e7e43c891fb63d3b781a6b75e995f19dd7aa782d58cc2f40
}

// Start a containerd, import images, drive it through CRI at
// "unix://"+c.Address(), then stop it and check that it left nothing (needs
// root and Debian's containerd).
func ExampleStart() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := containerdtest.Start(ctx, containerdtest.Config{
		Dir:        "/tmp/nkac-1/ctd",
		Runc:       "/work/main/bin/runc",
		CNIConfDir: "/tmp/nkac-1/net.d",
		CNIBinDir:  "/usr/lib/cni",
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Import(ctx, "_output/images/busybox.tar", "_output/images/pause.tar"); err != nil {
		log.Fatal(err)
	}
	// ... pods through CRI, removed through CRI ...
	if err := c.Stop(10 * time.Second); err != nil {
		log.Print(err)
	}
	for _, l := range c.Cleanup() {
		log.Printf("containerd left %s", l)
	}
}
