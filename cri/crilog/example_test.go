package crilog_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nodekit-dev/nodekit/cri/crilog"
)

func Example() {
	dir, _ := os.MkdirTemp("", "crilog-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app", "0.log")

	sink, err := crilog.Open(path)
	if err != nil {
		panic(err)
	}
	stdout := crilog.NewWriter(sink, crilog.Stdout, 8)
	stderr := crilog.NewWriter(sink, crilog.Stderr, 8)
	fmt.Fprint(stdout, "hello\nthis line is long\n")
	fmt.Fprint(stderr, "oops")
	stdout.Close()
	stderr.Close() // flushes "oops" as a final record
	sink.Close()

	data, _ := os.ReadFile(path)
	for line := range bytes.Lines(data) {
		e, err := crilog.ParseLine(line)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s partial=%v %q\n", e.Stream, e.Partial, e.Content)
	}
	// Output:
	// stdout partial=false "hello"
	// stdout partial=true "this lin"
	// stdout partial=true "e is lon"
	// stdout partial=false "g"
	// stderr partial=false "oops"
}
