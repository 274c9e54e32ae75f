// Command nodekit-monitor supervises one container for the nodekit CRI shim; see
// package github.com/nodekit-dev/nodekit/cri/monitor. It is started by monitor.Start
// as `nodekit-monitor CONFIG-FILE` with a sync pipe on fd 3.
package main

import (
	"os"
	"runtime"

	"github.com/nodekit-dev/nodekit/cri/monitor"
)

func main() {
	// Start already sets GOMAXPROCS=1 in the environment; this covers other callers.
	runtime.GOMAXPROCS(1)
	if len(os.Args) > 1 && os.Args[1] == monitor.PauseArg {
		os.Exit(monitor.Pause(os.Args[2:])) // a pod's PID namespace holder
	}
	os.Exit(monitor.Main(os.Args[1:], os.NewFile(3, "sync")))
}
