package monitor

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
	"github.com/nodekit-dev/nodekit/cri/crilog"
)

// ConfigFile is the name of the file Start writes the Config to, in its dir.
const ConfigFile = "monitor.json"

// DefaultCgroupRoot is where the cgroup filesystems are mounted.
const DefaultCgroupRoot = "/sys/fs/cgroup"

// ReapArg, as the first argument, puts the monitor binary in reap mode:
// `nodekit-monitor reap PIDFILE RUNTIME ARGS...` runs the runtime command (a
// detached `runc exec -d`, which leaves its process behind) as a child subreaper,
// waits for the process whose pid the runtime wrote to PIDFILE and exits with its
// status: its exit code, or 128+signal. If the runtime fails, it exits with the
// runtime's status. The shim uses it for terminal execs (runc.ExecOptions.Reaper).
const ReapArg = "reap"

// UnknownExitCode is the exit code recorded when the monitor lost track of the
// container process and cannot know its real exit status.
const UnknownExitCode = 255

// Config tells a monitor which container to run and where to put what. It is
// written as JSON by Start and read by the monitor binary.
type Config struct {
	ID          string   `json:"id"`
	Bundle      string   `json:"bundle"`  // holds config.json and the mounted rootfs
	Runtime     string   `json:"runtime"` // absolute path of runc (or a compatible runtime)
	RuntimeRoot string   `json:"runtimeRoot,omitempty"`
	RuntimeArgs []string `json:"runtimeArgs,omitempty"` // extra global runtime flags, e.g. --systemd-cgroup

	LogPath    string `json:"logPath,omitempty"`    // CRI log file; "" discards the output
	LogMaxLine int    `json:"logMaxLine,omitempty"` // longer lines become P records; 0 = crilog.DefaultMaxLine

	ExitFile     string `json:"exitFile"` // where the Exit record is written
	PidFile      string `json:"pidFile"`  // the runtime writes the container pid here
	Terminal     bool   `json:"terminal,omitempty"`
	DeleteOnExit bool   `json:"deleteOnExit,omitempty"`
	CgroupRoot   string `json:"cgroupRoot,omitempty"` // "" = DefaultCgroupRoot

	// Stdin gives the container a stdin that attached clients write to: a pipe the
	// monitor holds open (a terminal's stdin is its pty). Without it the
	// container's stdin is /dev/null and client input is dropped.
	Stdin bool `json:"stdin,omitempty"`
	// StdinOnce closes the container's stdin once the first attached client's
	// stdin ends (not for a terminal, whose pty stays open, as in containerd).
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// AttachSocket is where clients attach to the container's stdio (see Attach);
	// "" offers none. Its length is not limited by the 108 bytes of a socket address.
	AttachSocket string `json:"attachSocket,omitempty"`
}

// Validate reports the first missing required field or relative path (the monitor
// runs in /).
func (c Config) Validate() error {
	if c.ID == "" {
		return fmt.Errorf("monitor config: ID is empty")
	}
	for _, f := range []struct {
		name, path string
		optional   bool
	}{
		{"Bundle", c.Bundle, false}, {"Runtime", c.Runtime, false},
		{"ExitFile", c.ExitFile, false}, {"PidFile", c.PidFile, false},
		{"RuntimeRoot", c.RuntimeRoot, true}, {"LogPath", c.LogPath, true},
		{"CgroupRoot", c.CgroupRoot, true}, {"AttachSocket", c.AttachSocket, true},
	} {
		switch {
		case f.path == "" && f.optional:
		case f.path == "":
			return fmt.Errorf("monitor config: %s is empty", f.name)
		case !filepath.IsAbs(f.path):
			return fmt.Errorf("monitor config: %s %q is not an absolute path", f.name, f.path)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.LogMaxLine <= 0 {
		c.LogMaxLine = crilog.DefaultMaxLine
	}
	if c.CgroupRoot == "" {
		c.CgroupRoot = DefaultCgroupRoot
	}
	return c
}

// ReadConfig reads a Config written by Start.
func ReadConfig(path string) (Config, error) {
	var c Config
	if err := atomicfile.ReadJSON(path, &c); err != nil {
		return c, fmt.Errorf("read monitor config: %w", err)
	}
	return c, c.Validate()
}

// Exit is the record of a container's end.
type Exit struct {
	Pid        int       `json:"pid"`
	ExitCode   int32     `json:"exitCode"` // 128+signal when killed by a signal
	Signal     int       `json:"signal,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	// Error says what went wrong besides the container's own exit, e.g. "log write
	// failed: ..." or that the monitor lost track of the process (ExitCode is then
	// UnknownExitCode).
	Error string `json:"error,omitempty"`
}

// Process is a started container and its monitor.
type Process struct {
	ContainerPid int
	MonitorPid   int
	// Monitor is the monitor process, a child of the caller: Wait on it to reap it
	// when it exits (after the container's exit record is written).
	Monitor *os.Process
}

// ReadExit reads the exit record at path. When the container has not exited yet
// the error wraps os.ErrNotExist.
func ReadExit(path string) (Exit, error) {
	var e Exit
	if err := atomicfile.ReadJSON(path, &e); err != nil {
		return e, fmt.Errorf("read exit record: %w", err)
	}
	if e.FinishedAt.IsZero() {
		return e, fmt.Errorf("read exit record %s: finishedAt is missing", path)
	}
	return e, nil
}
