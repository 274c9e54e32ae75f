package main

import "fmt"

// The registry configuration the runner gives nodekit-cri: critest's registries,
// served by the local registry only.
func Example_mirrors() {
	fmt.Print(mirrorsConfig("127.0.0.1:5000"))
	// Output:
	// # Written by examples/critest: critest's registries are served by its local registry.
	//
	// [registry."gcr.io"]
	// mirrors = ["http://127.0.0.1:5000"]
	// mirrors_only = true
	//
	// [registry."registry.k8s.io"]
	// mirrors = ["http://127.0.0.1:5000"]
	// mirrors_only = true
	//
	// [registry."k8s.gcr.io"]
	// mirrors = ["http://127.0.0.1:5000"]
	// mirrors_only = true
}
