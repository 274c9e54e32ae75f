package cmdline

import (
	"bytes"
	"strings"
)

// Split splits the contents of /proc/PID/cmdline (NUL-separated,
// NUL-terminated) into argv; nil for an empty one (a kernel thread).
func Split(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// FlagValue returns the value of a Go-flag-style option (-name v, --name v,
// -name=v, --name=v) in the command line args (args[0] is the program), or "".
func FlagValue(args []string, name string) string {
	for i := 1; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		if a == args[i] {
			continue // not an option
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
