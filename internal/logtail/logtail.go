package logtail

import (
	"bytes"
	"os"
	"strings"
)

// Lines returns the last n lines of the file at path, without the final
// newline; "" when it cannot be read.
func Lines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(bytes.TrimRight(data, "\n")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
