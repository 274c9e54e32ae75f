package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// floor runs the same busybox rootfs with runc directly: no CRI, no image
// handling, no sandbox: the least any runc-based runtime must do.
type floor struct {
	runc   string
	root   string // runc --root
	dir    string // bundles go below
	rootfs string // the busybox layer, used read-only
	cgroup string // /nkbench-<id>/floor
	base   specs.Spec
}

// newFloor imports busybox.tar into a private nodekit store to get its (single)
// layer, and takes the base config from `runc spec`.
func newFloor(ctx context.Context, w *workspace, nodekitCRI, busyboxTar string) (*floor, error) {
	f := &floor{runc: w.runc, root: w.path("floor", "runc"), dir: w.path("floor"), cgroup: path.Join(w.cgroup, "floor")}
	w.addRuncRoot(f.root)
	store := w.path("floor", "store")
	if out, err := exec.CommandContext(ctx, nodekitCRI, "import", "--root", store, busyboxTar).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("floor: import %s: %w\n%s", busyboxTar, err, out)
	}
	layers, err := filepath.Glob(filepath.Join(store, "images", "layers", "*", "fs"))
	if err != nil || len(layers) != 1 {
		return nil, fmt.Errorf("floor: want exactly one layer of busybox under %s/images/layers, found %d (%v)", store, len(layers), err)
	}
	f.rootfs = layers[0]

	specDir := w.path("floor", "spec")
	if err := os.MkdirAll(specDir, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, f.runc, "spec", "--bundle", specDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("floor: runc spec: %w\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(specDir, "config.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &f.base); err != nil {
		return nil, fmt.Errorf("floor: parse runc spec output: %w", err)
	}
	f.base.Process.Args = []string{"sleep", "3600"}
	f.base.Process.Terminal = false
	f.base.Root = &specs.Root{Path: f.rootfs, Readonly: true}
	return f, nil
}

// bundle writes the bundle of container id (untimed).
func (f *floor) bundle(id string) (string, error) {
	dir := filepath.Join(f.dir, "bundles", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	s := f.base
	lx := *s.Linux
	lx.CgroupsPath = path.Join(f.cgroup, id)
	s.Linux = &lx
	data, err := json.Marshal(&s)
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
}

func (f *floor) cmd(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, f.runc, append([]string{"--root", f.root}, args...)...)
	// Stderr is kept for error messages. A detached container inherits runc's stdio,
	// so `run` gets /dev/null for all three (nil) and reports errors with --log.
	var stderr strings.Builder
	if !slices.Contains(args, "run") {
		cmd.Stderr = &stderr
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("runc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// run is `runc run -d` with stdio on /dev/null; runc's own messages go to a log
// file in the bundle, which an error quotes.
func (f *floor) run(ctx context.Context, bundle, pidFile, id string) error {
	logFile := filepath.Join(bundle, "runc.log")
	err := f.cmd(ctx, "--log", logFile, "run", "-d", "--pid-file", pidFile, "--bundle", bundle, id)
	if err != nil {
		msg, _ := os.ReadFile(logFile)
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(msg)))
	}
	return nil
}

// iteration runs one floor cycle. F1: `runc run -d` + `runc delete --force`.
// F2: `runc run -d` + `runc kill KILL` + wait for the process to exit (pidfd) +
// `runc delete`. "running" is the `runc run -d` part.
func (f *floor) iteration(ctx context.Context, variant int, label string) (sample, error) {
	var s sample
	id := fmt.Sprintf("f%d-%s", variant, label)
	bundle, err := f.bundle(id)
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(bundle)
	pidFile := filepath.Join(bundle, "pid")
	t := time.Now()
	start := t
	lap := func() {
		now := time.Now()
		s.steps = append(s.steps, now.Sub(t))
		t = now
	}
	if err := f.run(ctx, bundle, pidFile, id); err != nil {
		_ = f.cmd(context.WithoutCancel(ctx), "delete", "--force", id) // best effort: the workspace deletes what is left
		return s, err
	}
	lap()
	s.running = time.Since(start)
	if variant == 1 {
		if err := f.cmd(ctx, "delete", "--force", id); err != nil {
			return s, err
		}
		lap()
	} else {
		if err := f.killAndWait(ctx, id, pidFile); err != nil {
			_ = f.cmd(context.WithoutCancel(ctx), "delete", "--force", id) // best effort: the workspace deletes what is left
			return s, err
		}
		lap()
		if err := f.cmd(ctx, "delete", id); err != nil {
			_ = f.cmd(context.WithoutCancel(ctx), "delete", "--force", id) // best effort: the workspace deletes what is left
			return s, err
		}
		lap()
	}
	s.full = time.Since(start)
	return s, nil
}

// killAndWait sends SIGKILL through runc and waits on a pidfd until the
// container's init has exited.
func (f *floor) killAndWait(ctx context.Context, id, pidFile string) error {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("read %s: %w", pidFile, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("pid file %s: %w", pidFile, err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	if err := f.cmd(ctx, "kill", id, "KILL"); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("poll pidfd: %w", err)
		}
		if n > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s (pid %d) still alive 10s after SIGKILL", id, pid)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// stepNames returns the step names of variant.
func floorSteps(variant int) []string {
	if variant == 1 {
		return []string{"runc run -d", "runc delete --force"}
	}
	return []string{"runc run -d", "runc kill KILL + wait", "runc delete"}
}
