package containerdtest

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"

	"github.com/nodekit-dev/nodekit/internal/cmdline"
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
	procs, err := cmdline.Processes()
	if err != nil {
		return nil, fmt.Errorf("list shims: %w", err)
	}
	var out []Shim
	for _, p := range procs {
		if IsShim(p.Args, address) {
			out = append(out, Shim{PID: p.PID, ID: cmdline.FlagValue(p.Args, "id")})
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
	return cmdline.FlagValue(args, "address") == address
}

// ShimSocket is where containerd 1.6 puts the ttrpc socket of the shim
// serving sandbox id of the containerd at address in namespace:
// /run/containerd/s/sha256(<address>/<namespace>/<id>).
func ShimSocket(address, namespace, id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(address, namespace, id)))
	return fmt.Sprintf("/run/containerd/s/%x", sum)
}
