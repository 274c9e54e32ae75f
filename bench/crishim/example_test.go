package main

import (
	"fmt"
	"os"
	"time"

	"github.com/nodekit-dev/nodekit/bench/internal/mdtable"
)

// The results are printed as Markdown tables, ready for bench/README.md.
func Example_table() {
	s := summarize([]time.Duration{90 * time.Millisecond, 100 * time.Millisecond, 110 * time.Millisecond})
	mdtable.Write(os.Stdout, [][]string{
		{"runtime", "p50", "p95"},
		{"nodekit", ms(s.P50), ms(s.P95)},
	})
	// Output:
	// | runtime |   p50 |   p95 |
	// | ------- | ----: | ----: |
	// | nodekit | 100.0 | 110.0 |
}

// The parameters every runtime gets in -mode critest: sequential life cycles, no
// image benchmarks.
func Example_critestParams() {
	fmt.Print(critestParams(20, 20))
	// Output:
	// # Written by bench/crishim -mode critest.
	// containersNumber: 20
	// containersNumberParallel: 1
	// podsNumber: 20
	// podsNumberParallel: 1
	// imagesNumber: 0
}
