//go:build !linux

package monitor

// PauseArg, as the first argument, makes nodekit-monitor the holder of a
// pod's PID namespace (Linux only).
const PauseArg = "pause"

// Pause is only supported on Linux.
func Pause(args []string) int { return 1 }
