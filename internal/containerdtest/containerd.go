package containerdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/logtail"
)

// Containerd is a running private containerd.
type Containerd struct {
	cfg     Config
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has been reaped
	waitErr error
	// hostDirs: which of HostDirs existed before Start (Cleanup removes the
	// others when they are empty).
	hostDirs map[string]bool

	mu      sync.Mutex
	stopped bool // Stop was called
}

// Start writes cfg's config.toml into cfg.Dir, starts containerd with it (in
// its own process group, stdout and stderr in cfg.Dir/containerd.log) and
// waits until its CRI plugin reports RuntimeReady and NetworkReady, or ctx
// ends (without a deadline: 30 s). When it fails, the containerd is stopped
// and cleaned up.
func Start(ctx context.Context, cfg Config) (*Containerd, error) {
	if err := Missing(); err != nil {
		return nil, err
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Dir, cfg.StateDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	conf := filepath.Join(cfg.Dir, "config.toml")
	if err := os.WriteFile(conf, []byte(cfg.TOML()), 0o644); err != nil {
		return nil, fmt.Errorf("containerd: write config: %w", err)
	}
	c := &Containerd{cfg: cfg, logPath: filepath.Join(cfg.Dir, "containerd.log"), done: make(chan struct{}), hostDirs: map[string]bool{}}
	for _, d := range HostDirs {
		_, err := os.Stat(d)
		c.hostDirs[d] = err == nil
	}
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	defer logf.Close()
	c.cmd = exec.Command(Binary, "--config", conf)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.Dir = "/"
	// Its own process group: a terminal's ^C reaches only the caller, which
	// cleans up through containerd before stopping it.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("containerd: start %s: %w", Binary, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	if err := c.waitReady(ctx); err != nil {
		c.Cleanup()
		return nil, err
	}
	return c, nil
}

// waitReady polls the CRI Status until RuntimeReady and NetworkReady hold.
func (c *Containerd) waitReady(ctx context.Context) error {
	conn, err := grpc.NewClient("unix://"+c.Address(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("containerd: dial %s: %w", c.Address(), err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	last := errors.New("socket not there yet")
	for {
		if c.Exited() {
			return fmt.Errorf("containerd exited during start-up: %v\n%s", c.waitErr, c.LogTail(20))
		}
		if _, err := os.Stat(c.Address()); err == nil {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := rt.Status(cctx, &runtimeapi.StatusRequest{})
			cancel()
			if err != nil {
				last = err
			} else if err := notReady(st); err != nil {
				last = err
			} else {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd at %s not ready: %w (%v)\n%s", c.Address(), last, ctx.Err(), c.LogTail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// notReady names the runtime conditions of st that do not hold.
func notReady(st *runtimeapi.StatusResponse) error {
	var errs []error
	for _, want := range []string{runtimeapi.RuntimeReady, runtimeapi.NetworkReady} {
		ok := false
		for _, cond := range st.GetStatus().GetConditions() {
			if cond.GetType() == want && cond.GetStatus() {
				ok = true
			} else if cond.GetType() == want {
				errs = append(errs, fmt.Errorf("%s: %s %s", want, cond.GetReason(), cond.GetMessage()))
			}
		}
		if !ok && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("%s not reported", want))
		}
	}
	return errors.Join(errs...)
}

// Config returns the containerd's configuration.
func (c *Containerd) Config() Config { return c.cfg }

// Address is the containerd's gRPC socket (serve CRI with "unix://"+Address()).
func (c *Containerd) Address() string { return c.cfg.Address() }

// PID is the containerd process's id.
func (c *Containerd) PID() int { return c.cmd.Process.Pid }

// Exited reports whether the containerd process has ended.
func (c *Containerd) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// LogTail returns the last n lines of the containerd's log.
func (c *Containerd) LogTail(n int) string { return logtail.Lines(c.logPath, n) }

// Import imports image archives (OCI layouts or docker archives, as tar) into
// the CRI plugin's namespace with `ctr images import`.
func (c *Containerd) Import(ctx context.Context, archives ...string) error {
	return Import(ctx, c.Address(), archives...)
}

// Import imports image archives into the CRI plugin's namespace of the
// containerd at address with `ctr images import`; the CRI plugin sees the
// images under the names their archives give them.
func Import(ctx context.Context, address string, archives ...string) error {
	for _, a := range archives {
		out, err := exec.CommandContext(ctx, CtrBinary, "--address", address, "-n", Namespace, "images", "import", a).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ctr images import %s: %w\n%s", a, err, out)
		}
	}
	return nil
}

// Stop stops the containerd by its PID: SIGTERM, then SIGKILL after grace. It
// is an error when the containerd had exited on its own or needed SIGKILL.
// Shims keep running: they outlive containerd by design (Cleanup kills them).
func (c *Containerd) Stop(grace time.Duration) error {
	c.mu.Lock()
	first := !c.stopped
	c.stopped = true
	c.mu.Unlock()
	if c.Exited() {
		if first {
			return fmt.Errorf("containerd (pid %d) had exited before it was stopped: %v\n%s", c.PID(), c.waitErr, c.LogTail(20))
		}
		return nil
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return nil
	case <-t.C:
	}
	c.cmd.Process.Kill()
	<-c.done
	return fmt.Errorf("containerd (pid %d) did not stop within %s of SIGTERM; killed\n%s", c.PID(), grace, c.LogTail(20))
}

// Cleanup stops the containerd if it still runs and removes what it left on
// the node, saying what it found: shims serving it (killed by PID; their -id
// counts as a sandbox), containers in its runc root, shim sockets and CNI
// result cache entries of sandboxIDs and the shims' sandboxes, mounts under
// its directories. The HostDirs Start created are removed when empty. A
// containerd whose pods were all removed through CRI before it stopped leaves
// nothing: callers assert that the result is empty.
func (c *Containerd) Cleanup(sandboxIDs ...string) []string {
	var found []string
	if !c.Exited() {
		if err := c.Stop(10 * time.Second); err != nil {
			found = append(found, err.Error())
		}
	}
	ids := map[string]bool{}
	for _, id := range sandboxIDs {
		ids[id] = true
	}

	// Shims, by PID.
	shims, err := Shims(c.Address())
	if err != nil {
		found = append(found, err.Error())
	}
	var killed []int
	for _, s := range shims {
		if s.ID != "" {
			ids[s.ID] = true
		}
		if err := syscall.Kill(s.PID, syscall.SIGKILL); err == nil {
			found = append(found, fmt.Sprintf("shim pid %d (id %s), killed", s.PID, s.ID))
			killed = append(killed, s.PID)
		}
	}
	waitGone(killed, 5*time.Second)

	// Containers in its runc root.
	root := c.cfg.RuncRoot()
	if out, err := exec.Command(c.cfg.Runc, "--root", root, "list", "-q").Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			msg, err := exec.Command(c.cfg.Runc, "--root", root, "delete", "--force", id).CombinedOutput()
			if err != nil {
				found = append(found, fmt.Sprintf("runc container %s (root %s): delete: %v: %s", id, root, err, bytes.TrimSpace(msg)))
			} else {
				found = append(found, fmt.Sprintf("runc container %s (root %s), deleted", id, root))
			}
		}
	} else if _, serr := os.Stat(root); serr == nil {
		found = append(found, fmt.Sprintf("runc --root %s list: %v", root, err))
	}

	// Files outside its directories.
	for id := range ids {
		if sock := ShimSocket(c.Address(), Namespace, id); os.Remove(sock) == nil {
			found = append(found, "shim socket "+sock+", removed")
		}
		matches, _ := filepath.Glob("/var/lib/cni/results/*-" + id + "-*")
		for _, m := range matches {
			if os.Remove(m) == nil {
				found = append(found, "CNI cache entry "+m+", removed")
			}
		}
	}
	if !othersRunning() {
		for i := len(HostDirs) - 1; i >= 0; i-- {
			if d := HostDirs[i]; !c.hostDirs[d] {
				os.Remove(d) // only when empty
			}
		}
	}

	// Mounts under its directories, deepest first.
	for _, dir := range []string{c.cfg.Dir, c.cfg.StateDir()} {
		for _, m := range MountsUnder(dir) {
			if err := unix.Unmount(m, 0); err != nil {
				if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
					found = append(found, fmt.Sprintf("mount %s: unmount: %v", m, err))
					continue
				}
			}
			found = append(found, "mount "+m+", unmounted")
		}
	}
	return found
}

// MountsUnder returns the mount points below dir (not dir itself), the latest
// mounted (so the deepest) first; none when /proc/self/mountinfo cannot be read.
func MountsUnder(dir string) []string {
	dir = filepath.Clean(dir)
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil
	}
	var out []string
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Mountpoint != dir {
			out = append(out, mounts[i].Mountpoint)
		}
	}
	return out
}

// waitGone polls until none of pids runs any more (gone, or a zombie), up to d.
func waitGone(pids []int, d time.Duration) {
	deadline := time.Now().Add(d)
	for _, pid := range pids {
		for running(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || !bytes.HasPrefix(bytes.TrimSpace(stat[i+1:]), []byte("Z"))
}

// othersRunning reports whether any containerd or containerd shim runs on the
// node: the HostDirs are theirs too, even when empty for a moment.
func othersRunning() bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		name := filepath.Base(string(bytes.SplitN(cmdline, []byte{0}, 2)[0]))
		if name == "containerd" || strings.HasPrefix(name, "containerd-shim") {
			return true
		}
	}
	return false
}
