package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nodekit-dev/nodekit/bench/internal/leftover"
	"github.com/nodekit-dev/nodekit/bench/internal/podnet"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/bench/internal/rundir"
	"github.com/nodekit-dev/nodekit/internal/cgroupmount"
)

// workspace is everything one run creates: a directory /tmp/nkcl-<id> (files,
// sockets, the agents' and runtimes' roots, mounts, the audit logs), a cgroup
// /nkcl-<id> holding every cgroup of every agent, and a CNI bridge of its own.
// cleanup undoes it all, and what the upstream kubelet does outside them: the
// kernel settings it changes, the /var/log/containers links it makes.
type workspace struct {
	dir    string // /tmp/nkcl-<id>
	id     string
	cgroup string // /nkcl-<id>
	bin    string
	out    io.Writer

	mu sync.Mutex
	// undo: steps registered as things start (agents, runtimes, control
	// planes), run newest first by cleanup.
	undo []func(say func(string, ...any))
	// sysctls the upstream kubelet may change, as they were before it ran.
	sysctls map[string]string
	// createdContainerLogs: /var/log/containers did not exist before the run.
	createdContainerLogs bool
	// createdKubeletRun: /run/nodekit-kubelet did not exist before the run.
	createdKubeletRun bool
	bridge            string
}

func newWorkspace(bin string, out io.Writer) (*workspace, error) {
	d, err := rundir.New("nkcl-", 0o711)
	if err != nil {
		return nil, err
	}
	w := &workspace{dir: d.Path, id: d.ID, cgroup: d.Cgroup, bin: bin, out: out}
	_, err = os.Stat(containerLogsDir)
	w.createdContainerLogs = errors.Is(err, fs.ErrNotExist)
	_, err = os.Stat(filepath.Dir(kubeletStateDir))
	w.createdKubeletRun = errors.Is(err, fs.ErrNotExist)
	return w, nil
}

func (w *workspace) path(elem ...string) string {
	return filepath.Join(append([]string{w.dir}, elem...)...)
}

// onCleanup registers an undo step.
func (w *workspace) onCleanup(f func(say func(string, ...any))) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.undo = append(w.undo, f)
}

// --- cgroups -------------------------------------------------------------------

// makeCgroup creates the cgroup w.cgroup/name in every hierarchy (the upstream
// kubelet wants its --cgroup-root to exist) and returns its path. In the
// cpuset hierarchy the new directories get their parent's CPUs and memory
// nodes, which cgroup v1 leaves empty.
func (w *workspace) makeCgroup(name string) (string, error) {
	cg := w.cgroup + "/" + name
	mps, err := cgroupmount.Points()
	if err != nil {
		return "", err
	}
	for _, mp := range mps {
		for _, d := range []string{w.cgroup, cg} {
			p := filepath.Join(mp, d)
			if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return "", fmt.Errorf("cgroup %s: %w", p, err)
			}
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				cur, err := os.ReadFile(filepath.Join(p, f))
				if err != nil || strings.TrimSpace(string(cur)) != "" {
					continue
				}
				parent, err := os.ReadFile(filepath.Join(filepath.Dir(p), f))
				if err != nil {
					return "", fmt.Errorf("cgroup %s: %w", p, err)
				}
				if err := os.WriteFile(filepath.Join(p, f), parent, 0o644); err != nil {
					return "", fmt.Errorf("cgroup %s: %s: %w", p, f, err)
				}
			}
		}
	}
	return cg, nil
}

// --- the CNI network ---------------------------------------------------------

// network is the run's CNI network, the same for every agent and runtime: a
// bridge of its own, a /22 nobody else uses, host-local IPAM with its data in
// the workspace; no ipMasq and no portmap, so no iptables rule.
type network struct {
	name    string // network and bridge name
	confDir string
	binDir  string // Debian's plugins: bridge, host-local, loopback
}

// cniBinDir holds Debian's containernetworking-plugins.
const cniBinDir = "/usr/lib/cni"

func (w *workspace) newNetwork() (*network, error) {
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, p)); err != nil {
			return nil, fmt.Errorf("CNI plugin %s: %w (run `sudo make setup`)", p, err)
		}
	}
	var b [4]byte
	rand.Read(b[:])
	n := &network{name: "nkcl" + hex.EncodeToString(b[:]), confDir: w.path("net.d"), binDir: cniBinDir}
	subnet, err := podnet.FreeSubnet()
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.bridge = n.name
	w.mu.Unlock()
	if err := os.MkdirAll(n.confDir, 0o755); err != nil {
		return nil, err
	}
	return n, podnet.WriteBridgeConfList(filepath.Join(n.confDir, "10-nkcl.conflist"), n.name, subnet, w.path("ipam"))
}

// --- what the upstream kubelet changes outside the workspace -----------------

// kubeletSysctls are the kernel settings the kubelet sets when they differ
// (pkg/kubelet/cm setupKernelTunables, protectKernelDefaults false).
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// saveSysctls notes kubeletSysctls before the first kubelet starts.
func (w *workspace) saveSysctls() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sysctls != nil {
		return nil
	}
	saved := map[string]string{}
	for _, s := range kubeletSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", s))
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", s, err)
		}
		saved[s] = strings.TrimSpace(string(v))
	}
	w.sysctls = saved
	return nil
}

// restoreSysctls sets back what saveSysctls noted, and says what it changed.
func (w *workspace) restoreSysctls(say func(string, ...any)) {
	var changed []string
	for _, s := range kubeletSysctls {
		old, ok := w.sysctls[s]
		if !ok {
			continue
		}
		p := filepath.Join("/proc/sys", s)
		cur, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(cur)) == old {
			continue
		}
		if err := os.WriteFile(p, []byte(old), 0o644); err != nil {
			say("restore sysctl %s to %s: %v", s, old, err)
			continue
		}
		changed = append(changed, fmt.Sprintf("%s %s→%s", strings.ReplaceAll(s, "/", "."), strings.TrimSpace(string(cur)), old))
	}
	if len(changed) > 0 {
		say("restored the kernel settings the kubelet had changed: %s", strings.Join(changed, ", "))
	}
}

// containerLogsDir is where the upstream kubelet links each container's log
// (a path it does not let one change).
const containerLogsDir = "/var/log/containers"

// removeContainerLogLinks removes the links in containerLogsDir into the
// workspace, and the directory if the run created it and it is empty.
func (w *workspace) removeContainerLogLinks(say func(string, ...any)) {
	entries, _ := os.ReadDir(containerLogsDir)
	var n int
	for _, e := range entries {
		p := filepath.Join(containerLogsDir, e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, w.dir+"/") && os.Remove(p) == nil {
			n++
		}
	}
	if n > 0 {
		say("removed %d links to the run's container logs from %s", n, containerLogsDir)
	}
	if w.createdContainerLogs && os.Remove(containerLogsDir) == nil {
		say("removed %s (created by the kubelet during this run)", containerLogsDir)
	}
}

// --- cleanup ----------------------------------------------------------------

// cleanup removes everything the run created, in dependency order, and says
// what it did. Every step runs, whatever failed before.
func (w *workspace) cleanup() {
	say := func(format string, a ...any) { fmt.Fprintf(w.out, "cleanup: "+format+"\n", a...) }
	w.mu.Lock()
	undo := w.undo
	w.undo = nil
	w.mu.Unlock()
	// 1. Agents, runtimes, control planes: newest first.
	for i := len(undo) - 1; i >= 0; i-- {
		undo[i](say)
	}
	// 2. Monitors of nodekit-cri (state in the workspace) left behind, by PID.
	killed, err := leftover.KillProcs(func(p procfs.Proc) bool { return leftover.IsMonitorUnder(p.Args, w.dir) })
	if err != nil {
		say("%v", err)
	}
	for _, p := range killed {
		say("killed leftover nodekit-monitor (pid %d)", p.PID)
	}
	// 3. Mounts under the workspace, deepest first.
	if left, err := leftover.MountsUnder(w.dir); err == nil && len(left) > 0 {
		say("mounts left under %s: %s", w.dir, strings.Join(left, " "))
	}
	n, errs := leftover.Unmount(w.dir)
	for _, err := range errs {
		say("%v", err)
	}
	say("unmounted %d mounts under %s", n, w.dir)
	// 4. Cgroups.
	removed, errs := leftover.RemoveCgroup(w.cgroup, time.Now().Add(10*time.Second))
	for _, err := range errs {
		say("%v", err)
	}
	say("removed %d cgroup directories under %s", removed, w.cgroup)
	// 5. The bridge.
	if b := w.bridge; b != "" {
		if _, err := os.Stat(filepath.Join("/sys/class/net", b)); err == nil {
			if out, err := exec.Command("ip", "link", "del", b).CombinedOutput(); err != nil {
				say("delete bridge %s: %v: %s", b, err, strings.TrimSpace(string(out)))
			} else {
				say("deleted bridge %s", b)
			}
		}
	}
	// 6. Outside the workspace: the kubelet's kernel settings and log links,
	// nodekit-kubelet's shared state directory.
	w.restoreSysctls(say)
	w.removeContainerLogLinks(say)
	if w.createdKubeletRun && objectsIn(kubeletStateDir) == "" {
		if err := os.RemoveAll(filepath.Dir(kubeletStateDir)); err == nil {
			say("removed %s (created by this run)", filepath.Dir(kubeletStateDir))
		}
	}
	// 7. The workspace.
	rundir.Remove(w.dir, say)
}

// objectsIn says what a nodekit runtime state directory holds ("3 sandboxes,
// 3 containers"), or "" when nothing.
func objectsIn(state string) string {
	var parts []string
	for _, sub := range []string{"sandboxes", "containers", "runc"} {
		if entries, _ := os.ReadDir(filepath.Join(state, sub)); len(entries) > 0 {
			parts = append(parts, strconv.Itoa(len(entries))+" "+sub)
		}
	}
	return strings.Join(parts, ", ")
}
