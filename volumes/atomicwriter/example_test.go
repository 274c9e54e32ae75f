package atomicwriter_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nodekit-dev/nodekit/volumes/atomicwriter"
)

// A configMap volume's files, then an update: readers of app.conf see the old
// or the new content, never a mix.
func Example() {
	dir, _ := os.MkdirTemp("", "atomicwriter-example-")
	defer os.RemoveAll(dir)
	w := atomicwriter.New(dir)
	if _, err := w.Write(map[string]atomicwriter.File{"app.conf": {Data: []byte("level=info\n")}}); err != nil {
		fmt.Println(err)
		return
	}
	changed, _ := w.Write(map[string]atomicwriter.File{"app.conf": {Data: []byte("level=debug\n")}})
	data, _ := os.ReadFile(filepath.Join(dir, "app.conf"))
	link, _ := os.Readlink(filepath.Join(dir, "app.conf"))
	fmt.Printf("changed: %v\napp.conf -> %s: %s", changed, link, data)
	// Output:
	// changed: true
	// app.conf -> ..data/app.conf: level=debug
}
