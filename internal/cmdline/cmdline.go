package cmdline

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process is a process and its command line.
type Process struct {
	PID  int
	Args []string // argv from /proc/PID/cmdline
}

// Processes lists the processes of /proc with a command line: kernel threads
// (none) and processes exiting while it looks are skipped.
func Processes() ([]Process, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue // gone, or a kernel thread
		}
		out = append(out, Process{PID: pid, Args: Split(raw)})
	}
	return out, nil
}

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
