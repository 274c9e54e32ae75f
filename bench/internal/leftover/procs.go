package leftover

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
)

// IsMonitorUnder reports whether the command line args is a nodekit-monitor
// whose config lives under dir (`nodekit-monitor <state>/containers/<id>/monitor.json`).
func IsMonitorUnder(args []string, dir string) bool {
	return len(args) >= 2 && filepath.Base(args[0]) == "nodekit-monitor" &&
		strings.HasPrefix(args[1], strings.TrimSuffix(dir, "/")+"/")
}

// KillProcs sends SIGKILL to every process match selects, by PID, waits up to
// 5 seconds for them to be gone and returns those it could signal.
func KillProcs(match func(procfs.Proc) bool) ([]procfs.Proc, error) {
	procs, err := procfs.List()
	if err != nil {
		return nil, fmt.Errorf("leftover processes: %w", err)
	}
	var killed []procfs.Proc
	var pids []int
	for _, p := range procs {
		if !match(p) {
			continue
		}
		if err := syscall.Kill(p.PID, syscall.SIGKILL); err == nil {
			killed = append(killed, p)
			pids = append(pids, p.PID)
		}
	}
	procfs.WaitGone(pids, 5*time.Second)
	return killed, nil
}

// RuncContainer is a container DeleteRuncContainers found.
type RuncContainer struct {
	ID, Root string
	Err      error // why it could not be deleted; nil: deleted
}

// String says what became of the container: "deleted leftover container <id>
// (runc root <root>)", or the error.
func (c RuncContainer) String() string {
	if c.Err != nil {
		return c.Err.Error()
	}
	return fmt.Sprintf("deleted leftover container %s (runc root %s)", c.ID, c.Root)
}

// DeleteRuncContainers deletes (`runc delete --force`) every container in the
// runc root root, with the runc binary runc, and returns them in runc's order.
// A root that does not exist holds nothing; one that exists but cannot be
// listed is an error.
func DeleteRuncContainers(runc, root string) ([]RuncContainer, error) {
	out, err := exec.Command(runc, "--root", root, "list", "-q").Output()
	if err != nil {
		if _, serr := os.Stat(root); serr == nil {
			return nil, fmt.Errorf("runc list --root %s: %w", root, err)
		}
		return nil, nil
	}
	var found []RuncContainer
	for _, id := range strings.Fields(string(out)) {
		c := RuncContainer{ID: id, Root: root}
		if msg, err := exec.Command(runc, "--root", root, "delete", "--force", id).CombinedOutput(); err != nil {
			c.Err = fmt.Errorf("runc delete --force %s (root %s): %w: %s", id, root, err, strings.TrimSpace(string(msg)))
		}
		found = append(found, c)
	}
	return found, nil
}
