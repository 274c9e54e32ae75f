package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Options configures a Runtime.
type Options struct {
	// Binary is the runtime's path (runc or crun).
	Binary string
	// Root is the runtime's state directory (runc --root).
	Root string
	// SystemdCgroup selects the systemd cgroup driver (--systemd-cgroup).
	SystemdCgroup bool
}

// Runtime runs OCI runtime commands.
type Runtime struct {
	opts Options
}

// New returns a Runtime for opts.
func New(opts Options) (*Runtime, error) {
	if opts.Binary == "" {
		return nil, errors.New("runc: no runtime binary configured")
	}
	if opts.Root == "" {
		return nil, errors.New("runc: no runtime root configured")
	}
	return &Runtime{opts: opts}, nil
}

// GlobalArgs returns the flags that precede every command (--root and, for the
// systemd driver, --systemd-cgroup).
func (r *Runtime) GlobalArgs() []string {
	args := []string{"--root", r.opts.Root}
	if r.opts.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	return args
}

// Binary returns the runtime binary's path.
func (r *Runtime) Binary() string { return r.opts.Binary }

// Root returns the runtime state directory.
func (r *Runtime) Root() string { return r.opts.Root }

// State is the part of `runc state` output the shim uses.
type State struct {
	ID      string    `json:"id"`
	Pid     int       `json:"pid"`
	Status  string    `json:"status"` // created, running, paused, stopped
	Bundle  string    `json:"bundle"`
	Created time.Time `json:"created"`
}

// ErrNotExist is returned when the runtime does not know the container.
var ErrNotExist = errors.New("container does not exist in the runtime")

// ErrNotRunning is returned by Kill when the container exists but has no process
// left to signal.
var ErrNotRunning = errors.New("container is not running")

// Exists reports whether the runtime still holds state for id. It only looks at the
// runtime's state directory, without running the binary.
func (r *Runtime) Exists(id string) bool {
	_, err := os.Stat(filepath.Join(r.opts.Root, id))
	return err == nil
}

// State returns the runtime's view of container id.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	out, err := r.run(ctx, "state", id)
	if err != nil {
		if !r.Exists(id) {
			return nil, fmt.Errorf("runc state %s: %w", id, ErrNotExist)
		}
		return nil, err
	}
	var st State
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("runc state %s: decode: %w", id, err)
	}
	return &st, nil
}

// List returns every container the runtime knows.
func (r *Runtime) List(ctx context.Context) ([]State, error) {
	out, err := r.run(ctx, "list", "--format", "json")
	if err != nil {
		return nil, err
	}
	var list []State
	if len(bytes.TrimSpace(out)) == 0 || bytes.Equal(bytes.TrimSpace(out), []byte("null")) {
		return nil, nil
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("runc list: decode: %w", err)
	}
	return list, nil
}

// Kill sends sig to the container's init process, or to all its processes when all
// is set (needed when the container does not own its PID namespace).
//
// A container's process can exit, and its supervisor delete it, at any moment, so
// whatever a caller checked before is stale by the time the runtime runs. Kill
// therefore classifies the runtime's own failure instead: a container that is gone
// gives an error wrapping ErrNotExist, one that has stopped an error wrapping
// ErrNotRunning; callers that only want the container dead treat both as done.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	args = append(args, id, fmt.Sprint(int(sig)))
	_, err := r.run(ctx, args...)
	return r.classify(id, err)
}

// classify turns a failed command on container id into an error wrapping
// ErrNotExist when the runtime no longer has the container, or ErrNotRunning when it
// has stopped, so that callers can tell "too late" from a real failure.
func (r *Runtime) classify(id string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "container does not exist") || !r.Exists(id):
		return fmt.Errorf("%w: %v", ErrNotExist, err)
	case strings.Contains(msg, "container not running") || strings.Contains(msg, "process already finished") ||
		strings.Contains(msg, "stopped container"):
		return fmt.Errorf("%w: %v", ErrNotRunning, err)
	case strings.Contains(msg, "unable to kill all processes") && strings.Contains(msg, "no such file or directory"):
		// `kill --all` walks the container's cgroup. A supervisor's `runc delete`
		// removes the cgroup before the state directory, so the kill can find the
		// state but not the cgroup. The kernel only removes an empty cgroup, so
		// no process of the container is left to signal.
		return fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	return err
}

// Delete removes the container's runtime state and cgroup, killing it if needed.
// A container the runtime does not know is not an error. A stopped container is
// deleted without --force, which in runc costs a fixed 100 ms wait.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	if !r.Exists(id) {
		return nil
	}
	if _, err := r.run(ctx, "delete", id); err == nil || !r.Exists(id) {
		return nil
	}
	_, err := r.run(ctx, "delete", "--force", id)
	if err != nil && !r.Exists(id) {
		return nil
	}
	return err
}

// Update applies a resources JSON document (runtime-spec LinuxResources) to a
// running container. Like Kill, a container that is gone or stopped gives an error
// wrapping ErrNotExist or ErrNotRunning.
func (r *Runtime) Update(ctx context.Context, id string, resources []byte) error {
	cmd := r.command(ctx, "update", "--resources", "-", id)
	cmd.Stdin = bytes.NewReader(resources)
	return r.classify(id, runCmd(cmd, "update "+id))
}

func (r *Runtime) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append(r.GlobalArgs(), args...)
	return exec.CommandContext(ctx, r.opts.Binary, full...)
}

func (r *Runtime) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := r.command(ctx, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := runCmd(cmd, strings.Join(args, " ")); err != nil {
		return nil, err
	}
	return stdout.Bytes(), nil
}

func runCmd(cmd *exec.Cmd, what string) error {
	var stderr bytes.Buffer
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return fmt.Errorf("%s %s: %w: %s", filepath.Base(cmd.Path), what, err, msg)
		}
		return fmt.Errorf("%s %s: %w", filepath.Base(cmd.Path), what, err)
	}
	return nil
}

// Features is the part of `runc features` the shim uses to say what it supports.
type Features struct {
	MountOptions []string `json:"mountOptions"`
	Linux        struct {
		Namespaces      []string `json:"namespaces"`
		MountExtensions struct {
			IDMap struct {
				Enabled *bool `json:"enabled"`
			} `json:"idmap"`
		} `json:"mountExtensions"`
	} `json:"linux"`
}

// Features asks the runtime what it supports.
func (r *Runtime) Features(ctx context.Context) (*Features, error) {
	out, err := r.run(ctx, "features")
	if err != nil {
		return nil, err
	}
	var f Features
	if err := json.Unmarshal(out, &f); err != nil {
		return nil, fmt.Errorf("runc features: decode: %w", err)
	}
	return &f, nil
}

// RecursiveReadOnly reports whether the runtime offers the "rro" mount option.
func (f *Features) RecursiveReadOnly() bool { return contains(f.MountOptions, "rro") }

// UserNamespaces reports whether the runtime runs containers in user namespaces
// with id-mapped mounts.
func (f *Features) UserNamespaces() bool {
	idmap := f.Linux.MountExtensions.IDMap.Enabled
	return contains(f.Linux.Namespaces, "user") && idmap != nil && *idmap
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
