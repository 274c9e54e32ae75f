package main

import (
	"fmt"
	"os"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodekit-dev/nodekit/bench/internal/mdtable"
	"github.com/nodekit-dev/nodekit/bench/internal/stats"
)

// Every pod of the benchmark is a static pod of one idle busybox container.
func Example_podManifest() {
	fmt.Print(podManifest(manifestName("exit-e", 3), v1.RestartPolicyNever))
	// Output:
	// apiVersion: v1
	// kind: Pod
	// metadata:
	//   name: exit-e-003
	// spec:
	//   restartPolicy: Never
	//   terminationGracePeriodSeconds: 1
	//   containers:
	//   - name: sleep
	//     image: nodekit.local/busybox:latest
	//     imagePullPolicy: Never
	//     command: ["sleep", "100000"]
}

// The results are printed as Markdown tables, ready for bench/README.md.
func Example_table() {
	s := stats.Summarize([]time.Duration{4 * time.Millisecond, 5 * time.Millisecond, 30 * time.Millisecond})
	mdtable.Write(os.Stdout, [][]string{
		{"PLEG", "p50", "p99"},
		{"evented", ms(s.P50), ms(s.P99)},
	})
	// Output:
	// | PLEG    |  p50 |  p99 |
	// | ------- | ---: | ---: |
	// | evented | 5.00 | 30.0 |
}
