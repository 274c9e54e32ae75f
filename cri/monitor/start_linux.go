package monitor

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
)

// Start spawns the monitor binary for cfg, writing the config to dir/ConfigFile,
// and waits for the monitor's report. On success the container runs, supervised by
// the monitor, which no longer depends on the caller. A failed start returns the
// runtime's message and leaves no monitor behind. If ctx ends first, the monitor is
// killed and the error wraps ctx.Err(); a container the runtime may have created
// by then is the caller's to delete (`runc delete --force`).
func Start(ctx context.Context, binary, dir string, cfg Config) (*Process, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, ConfigFile)
	if err := atomicfile.ReplaceJSON(path, cfg, 0o600); err != nil {
		return nil, fmt.Errorf("start monitor of %s: %w", cfg.ID, err)
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start monitor of %s: %w", cfg.ID, err)
	}
	defer syncR.Close()
	// Not CommandContext: the monitor must outlive ctx once started. Stdio is
	// /dev/null and a new session keeps the caller's terminal signals away.
	cmd := exec.Command(binary, path)
	cmd.Dir = "/"
	// One P from the start keeps the monitor at a few threads and a small heap
	// (see TestMonitorMemory); it never needs more.
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.ExtraFiles = []*os.File{syncW} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	syncW.Close()
	if err != nil {
		return nil, fmt.Errorf("start monitor of %s: %w", cfg.ID, err)
	}

	type report struct {
		data []byte
		err  error
	}
	reports := make(chan report, 1)
	go func() {
		data, err := io.ReadAll(io.LimitReader(syncR, 1<<20))
		reports <- report{data, err}
	}()
	var r report
	select {
	case r = <-reports:
	case <-ctx.Done():
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("start container %s: %w", cfg.ID, ctx.Err())
	}
	pid, err := readSync(r.data)
	if err == nil {
		return &Process{ContainerPid: pid, MonitorPid: cmd.Process.Pid, Monitor: cmd.Process}, nil
	}
	// The monitor exits after a failed start; reap it.
	if werr := cmd.Wait(); err == errNoReport && werr != nil {
		err = fmt.Errorf("%w: %w", err, werr)
	}
	if r.err != nil {
		err = fmt.Errorf("%w (reading its report: %w)", err, r.err)
	}
	return nil, fmt.Errorf("start container %s: %w", cfg.ID, err)
}
