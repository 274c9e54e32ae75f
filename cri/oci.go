package cri

import (
	"context"
	"path/filepath"
	"syscall"

	"github.com/nodekit-dev/nodekit/cri/monitor"
	"github.com/nodekit-dev/nodekit/cri/runc"
)

// ociRuntime is the seam between the CRI handlers and what runs containers: the
// OCI runtime (runc) and the per-container monitors that supervise them. The
// server holds one (runcRuntime in production); unit tests give it a fake whose
// "containers" are ordinary processes, so the handlers' logic runs without root,
// much as CRI-O's server sits on its oci.Runtime interface.
//
// Methods that act on a container that exits meanwhile classify the failure:
// errors wrap runc.ErrNotExist when the runtime no longer has it and
// runc.ErrNotRunning when it has stopped.
type ociRuntime interface {
	// Start has a monitor create and start container cfg.ID from its bundle
	// (cfg's runtime fields are filled in by the implementation). The monitor
	// holds the container's stdio, writes its log and, once it exits, its exit
	// record at cfg.ExitFile. dir is the container's state directory. Its
	// errors name the container.
	Start(ctx context.Context, dir string, cfg monitor.Config) (containerPid, monitorPid int, err error)
	// Exists reports whether the runtime holds state for id, without running it.
	Exists(id string) bool
	// IDs lists the containers the runtime holds state for.
	IDs() ([]string, error)
	// State is the runtime's view of container id.
	State(ctx context.Context, id string) (*runc.State, error)
	// Kill signals container id's init process, or all its processes.
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	// Delete removes id's runtime state, killing it if needed; an unknown id is
	// not an error.
	Delete(ctx context.Context, id string) error
	// Update applies a runtime-spec LinuxResources document to a running container.
	Update(ctx context.Context, id string, resources []byte) error
	// Exec runs a process in container id and returns its exit code.
	Exec(ctx context.Context, id string, o runc.ExecOptions) (int, error)
	// Features is what the runtime supports.
	Features(ctx context.Context) (*runc.Features, error)
	// Monitor finds the live monitor of the container whose state directory is
	// dir, if any: after a crash of the shim during StartContainer, a monitor
	// may be starting or supervising a container no record knows it for.
	Monitor(dir string) (pid int, start uint64, ok bool)
}

// runcRuntime is the production ociRuntime: runc, and nodekit-monitor processes.
type runcRuntime struct {
	*runc.Runtime
	monitor string // the monitor binary
}

func (r runcRuntime) Start(ctx context.Context, dir string, cfg monitor.Config) (int, int, error) {
	cfg.Runtime = r.Binary()
	cfg.RuntimeRoot = r.Root()
	cfg.RuntimeArgs = r.GlobalArgs()[2:]
	proc, err := monitor.Start(ctx, r.monitor, dir, cfg)
	if err != nil {
		return 0, 0, err
	}
	// Reap our child when it exits (after a shim restart init does).
	if err := reapWhenDone(proc.MonitorPid, nil); err != nil {
		go func() { _, _ = proc.Monitor.Wait() }() // reaping only: the exit record says how the container ended
	} else {
		_ = proc.Monitor.Release() // only drops the handle: reapWhenDone reaps it
	}
	return proc.ContainerPid, proc.MonitorPid, nil
}

func (r runcRuntime) IDs() ([]string, error) { return listDir(r.Root()) }

func (r runcRuntime) Monitor(dir string) (int, uint64, bool) {
	return findProcess(r.monitor, filepath.Join(dir, monitor.ConfigFile))
}
