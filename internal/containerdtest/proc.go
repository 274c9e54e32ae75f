package containerdtest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Shim is a containerd-shim-runc-v2 process.
type Shim struct {
	PID int
	// ID is the shim's -id: the sandbox (or container) it was started for.
	ID string
}

// Shims returns the containerd-shim-runc-v2 processes serving the containerd
// at address (its gRPC socket).
func Shims(address string) ([]Shim, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list shims: %w", err)
	}
	var out []Shim
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue // gone, or a kernel thread
		}
		args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
		if IsShim(args, address) {
			out = append(out, Shim{PID: pid, ID: flagValue(args, "id")})
		}
	}
	return out, nil
}

// IsShim reports whether the command line args is a containerd-shim-runc-v2
// serving the containerd at address (`-address <sock>` or `-address=<sock>`).
func IsShim(args []string, address string) bool {
	if len(args) == 0 || filepath.Base(args[0]) != "containerd-shim-runc-v2" {
		return false
	}
	return flagValue(args, "address") == address
}

// flagValue returns the value of a Go-flag-style option (-name v, --name v,
// -name=v, --name=v) in args, or "".
func flagValue(args []string, name string) string {
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

// ShimSocket is where containerd 1.6 puts the ttrpc socket of the shim
// serving sandbox id of the containerd at address in namespace:
// /run/containerd/s/sha256(<address>/<namespace>/<id>).
func ShimSocket(address, namespace, id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(address, namespace, id)))
	return fmt.Sprintf("/run/containerd/s/%x", sum)
}
