package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nodekit-dev/nodekit/bench/internal/daemon"
	"github.com/nodekit-dev/nodekit/bench/internal/leftover"
	"github.com/nodekit-dev/nodekit/bench/internal/podnet"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/bench/internal/rundir"
	"github.com/nodekit-dev/nodekit/cri/cni"
	"github.com/nodekit-dev/nodekit/internal/cmdline"
)

// kubeletStateDir is where nodekit-kubelet's embedded runtime keeps its state
// whatever --root-dir says (examples/kubelet: embeddedDirs). It is shared by
// every nodekit-kubelet of the machine, so the benchmark refuses to start one
// while another runs or the directory holds pods (checkKubeletState).
const kubeletStateDir = "/run/nodekit-kubelet/runtime"

// workspace is everything one benchmark run creates: a temp dir
// /tmp/nkagent-<id> holding files, sockets and mounts, a cgroup /nkagent-<id>
// holding every cgroup, and a CNI bridge network of its own (no iptables
// rules: no masquerading, no port mappings). cleanup undoes all of it and says
// what it did, on success, failure and interrupt alike.
type workspace struct {
	dir    string // /tmp/nkagent-<id>
	id     string
	cgroup string // /nkagent-<id>
	bin    string // runc, nodekit-monitor, nodekit-kubelet
	out    io.Writer
	meta   workspaceMeta

	netOnce sync.Once
	net     *network
	netErr  error

	mu      sync.Mutex
	daemons []*daemon.Daemon // nodekit-kubelet subprocesses, stopped first
	shims   []*shim          // in-process shims: pods removed through CRI, then closed
	// runtimes are root/state pairs of nodekit runtimes the run started: after
	// their server is gone, pods left in them are removed by a recovering
	// in-process shim, then their runc roots, monitors and mounts are swept.
	runtimes []runtimeDirs
}

// runtimeDirs are a nodekit runtime's directories.
type runtimeDirs struct {
	Root  string `json:"root"`
	State string `json:"state"`
}

// workspaceMeta is what -cleanup needs to know about a run, kept in
// <workspace>/workspace.json.
type workspaceMeta struct {
	Bridge   string        `json:"bridge"`
	Runtimes []runtimeDirs `json:"runtimes"`
	// CreatedKubeletRun: /run/nodekit-kubelet did not exist before the run.
	CreatedKubeletRun bool `json:"created_kubelet_run"`
}

// workspacePrefix names the workspace directory and cgroup: /tmp/nkagent-<id>,
// /nkagent-<id>.
const workspacePrefix = "nkagent-"

func newWorkspace(bin string, out io.Writer) (*workspace, error) {
	d, err := rundir.New(workspacePrefix, 0o711)
	if err != nil {
		return nil, err
	}
	return &workspace{dir: d.Path, id: d.ID, cgroup: d.Cgroup, bin: bin, out: out}, nil
}

// existingWorkspace is the workspace of a run that was killed before it could
// clean up (-cleanup /tmp/nkagent-<id>).
func existingWorkspace(dir, bin string, out io.Writer) (*workspace, error) {
	d, err := rundir.Existing(dir, workspacePrefix)
	if err != nil {
		return nil, fmt.Errorf("-cleanup %w", err)
	}
	w := &workspace{dir: d.Path, id: d.ID, cgroup: d.Cgroup, bin: bin, out: out}
	data, err := os.ReadFile(w.path("workspace.json"))
	if err != nil {
		return nil, fmt.Errorf("-cleanup: %w", err)
	}
	if err := json.Unmarshal(data, &w.meta); err != nil {
		return nil, fmt.Errorf("-cleanup: %s: %w", w.path("workspace.json"), err)
	}
	w.runtimes = w.meta.Runtimes
	return w, nil
}

func (w *workspace) path(elem ...string) string {
	return filepath.Join(append([]string{w.dir}, elem...)...)
}

// saveMeta writes workspace.json; w.mu must be held.
func (w *workspace) saveMeta() {
	w.meta.Runtimes = w.runtimes
	data, _ := json.MarshalIndent(w.meta, "", "  ")
	if err := os.WriteFile(w.path("workspace.json"), data, 0o644); err != nil {
		fmt.Fprintf(w.out, "warning: %v (-cleanup will not know everything)\n", err)
	}
}

func (w *workspace) addDaemon(d *daemon.Daemon) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.daemons = append(w.daemons, d)
}

func (w *workspace) addShim(s *shim) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.shims = append(w.shims, s)
}

func (w *workspace) addRuntime(root, state string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.runtimes = append(w.runtimes, runtimeDirs{Root: root, State: state})
	w.saveMeta()
}

// --- the CNI network ---------------------------------------------------------

// network is the run's own CNI network: a bridge, a /22 nobody else uses and a
// host-local data directory in the workspace. No ipMasq and no portmap: the
// plugins add no iptables rules, so there is nothing to undo but the bridge.
type network struct {
	name    string // network and bridge name
	confDir string
	ipamDir string
	subnet  *net.IPNet
}

// cniPlugins are the plugins the network uses (Debian's containernetworking-plugins).
var cniPlugins = []string{"bridge", "host-local", "loopback"}

// network returns the run's network, set up on first use.
func (w *workspace) network() (*network, error) {
	w.netOnce.Do(func() { w.net, w.netErr = w.newNetwork(cni.DefaultBinDirs) })
	return w.net, w.netErr
}

func (w *workspace) newNetwork(binDirs []string) (*network, error) {
	for _, p := range cniPlugins {
		found := false
		for _, d := range binDirs {
			if _, err := os.Stat(filepath.Join(d, p)); err == nil {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("CNI plugin %s not found in %s (run `sudo make setup`)", p, strings.Join(binDirs, ":"))
		}
	}
	var b [4]byte
	rand.Read(b[:])
	n := &network{
		name:    "nkag" + hex.EncodeToString(b[:]), // bridge names have at most 15 bytes
		confDir: w.path("net.d"),
		ipamDir: w.path("ipam"),
	}
	var err error
	if n.subnet, err = podnet.FreeSubnet(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.meta.Bridge = n.name
	w.saveMeta()
	w.mu.Unlock()
	if err := os.MkdirAll(n.confDir, 0o755); err != nil {
		return nil, err
	}
	if err := podnet.WriteBridgeConfList(filepath.Join(n.confDir, "10-nkagent.conflist"), n.name, n.subnet, n.ipamDir); err != nil {
		return nil, err
	}
	return n, nil
}

// --- the shared state dir of nodekit-kubelet ----------------------------------

// checkKubeletState makes sure the benchmark may use kubeletStateDir: no other
// nodekit-kubelet with the embedded runtime runs, and the directory holds no
// sandbox or container. It notes whether /run/nodekit-kubelet exists, so cleanup
// removes it only if the run created it.
func (w *workspace) checkKubeletState() error {
	procs, err := procfs.List()
	if err != nil {
		return err
	}
	for _, p := range procs {
		if isEmbeddedKubelet(p.Args) {
			return fmt.Errorf("another nodekit-kubelet with the embedded runtime runs (pid %d: %s); its runtime state is %s, which every nodekit-kubelet shares: stop it first",
				p.PID, strings.Join(p.Args, " "), kubeletStateDir)
		}
	}
	for _, sub := range []string{"sandboxes", "containers", "runc"} {
		entries, _ := os.ReadDir(filepath.Join(kubeletStateDir, sub))
		if len(entries) > 0 {
			return fmt.Errorf("%s holds %d entries of an earlier nodekit-kubelet; the benchmark needs it empty (start that kubelet again and stop its pods, or clean up by hand)",
				filepath.Join(kubeletStateDir, sub), len(entries))
		}
	}
	_, err = os.Stat(filepath.Dir(kubeletStateDir))
	w.mu.Lock()
	w.meta.CreatedKubeletRun = errors.Is(err, fs.ErrNotExist)
	w.saveMeta()
	w.mu.Unlock()
	return nil
}

// --- cleanup ----------------------------------------------------------------

// cleanup removes everything the run created, in dependency order, and prints
// each step. Every step runs, whatever failed before.
func (w *workspace) cleanup() {
	say := func(format string, a ...any) { fmt.Fprintf(w.out, "cleanup: "+format+"\n", a...) }
	w.mu.Lock()
	defer w.mu.Unlock()

	// 1. nodekit-kubelets, by the PIDs we started: SIGTERM makes them stop
	// every pod (--stop-pods-on-exit). With -cleanup: those whose --root-dir
	// is in the workspace.
	for i := len(w.daemons) - 1; i >= 0; i-- {
		say("%s", stopMessage(w.daemons[i].Stop(3*time.Minute)))
	}
	if w.daemons == nil {
		if procs, err := procfs.List(); err == nil {
			for _, p := range procs {
				if isEmbeddedKubelet(p.Args) && strings.HasPrefix(cmdline.FlagValue(p.Args, "root-dir"), w.dir+"/") {
					say("%s", daemon.StopPID(p.PID, "nodekit-kubelet", 3*time.Minute))
				}
			}
		}
	}

	// 2. In-process shims: their pods through CRI, then the servers.
	for _, s := range w.shims {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		n, err := removeAllPods(ctx, s.client)
		cancel()
		say("in-process shim %s: removed %d pods through CRI%s", s.dirs.Root, n, errSuffix(err))
		s.close()
	}

	// 3. Pods left in runtimes whose server is gone (a kubelet that died, a
	// killed run): a shim recovering their state removes them through CRI.
	// Newest first: the kubelets share one state dir, the last one used it.
	for i := len(w.runtimes) - 1; i >= 0; i-- {
		r := w.runtimes[i]
		if !holdsObjects(r.State) {
			continue
		}
		n, err := recoverAndRemove(r, w.bin, w.path("net.d"), w.path("recover.sock"), w.path("recover.log"))
		say("runtime %s (state %s): recovered and removed %d pods through CRI%s", r.Root, r.State, n, errSuffix(err))
	}

	// 4. Monitors left behind, by PID.
	killed, err := leftover.KillProcs(func(p procfs.Proc) bool {
		return slices.ContainsFunc(w.runtimes, func(r runtimeDirs) bool { return leftover.IsMonitorUnder(p.Args, r.State) })
	})
	if err != nil {
		say("%v", err)
	}
	for _, p := range killed {
		say("killed leftover nodekit-monitor (pid %d)", p.PID)
	}

	// 5. Containers left in the runtimes' runc roots.
	for _, r := range w.runtimes {
		found, err := leftover.DeleteRuncContainers(filepath.Join(w.bin, "runc"), filepath.Join(r.State, "runc"))
		if err != nil {
			say("%v", err)
		}
		for _, c := range found {
			say("%s", c)
		}
	}

	// 6. Mounts under the workspace and the runtimes' state dirs (overlay
	// rootfs, shm, pinned namespaces), deepest first.
	dirs := []string{w.dir}
	for _, r := range w.runtimes {
		if !strings.HasPrefix(r.State, w.dir+"/") && !slices.Contains(dirs, r.State) {
			dirs = append(dirs, r.State)
		}
	}
	unmounted, errs := leftover.Unmount(dirs...)
	for _, err := range errs {
		say("%v", err)
	}
	say("unmounted %d mounts under %s", unmounted, strings.Join(dirs, ", "))

	// 7. Cgroups under /nkagent-<id> in every hierarchy, deepest first.
	removed, errs := leftover.RemoveCgroup(w.cgroup, time.Now().Add(10*time.Second))
	for _, err := range errs {
		say("%v", err)
	}
	say("removed %d cgroup directories under %s", removed, w.cgroup)

	// 8. The bridge (the bridge plugin leaves it on purpose).
	if b := w.meta.Bridge; b != "" {
		if _, err := os.Stat(filepath.Join("/sys/class/net", b)); err == nil {
			if out, err := exec.Command("ip", "link", "del", b).CombinedOutput(); err != nil {
				say("delete bridge %s: %v: %s", b, err, strings.TrimSpace(string(out)))
			} else {
				say("deleted bridge %s", b)
			}
		}
	}

	// 9. nodekit-kubelet's state dir outside the workspace: emptied by its
	// runtime; removed only if the run created /run/nodekit-kubelet.
	if w.meta.CreatedKubeletRun && !holdsObjects(kubeletStateDir) {
		if err := os.RemoveAll(filepath.Dir(kubeletStateDir)); err == nil {
			say("removed %s (created by this run)", filepath.Dir(kubeletStateDir))
		}
	}

	// 10. The workspace.
	rundir.Remove(w.dir, say)
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return "; errors: " + err.Error()
}

// holdsObjects reports whether a nodekit runtime state dir holds sandboxes or
// containers.
func holdsObjects(state string) bool { return objectsIn(state) != "" }

// objectsIn says what a nodekit runtime state dir holds ("2 sandboxes, 2
// containers, 2 runc containers"), or "" when nothing.
func objectsIn(state string) string {
	counts := map[string]int{}
	for sub, name := range map[string]string{"sandboxes": "sandboxes", "containers": "containers", "runc": "runc containers"} {
		if entries, _ := os.ReadDir(filepath.Join(state, sub)); len(entries) > 0 {
			counts[name] = len(entries)
		}
	}
	if len(counts) == 0 {
		return ""
	}
	return formatCounts(counts)
}

var podNameLabel = regexp.MustCompile(`"io\.kubernetes\.pod\.name"\s*:\s*"([^"]+)"`)

// sandboxPods names the pods of the sandbox records in a nodekit runtime state
// dir (from the io.kubernetes.pod.name label in sandboxes/<id>/sandbox.json).
func sandboxPods(state string) []string {
	entries, _ := os.ReadDir(filepath.Join(state, "sandboxes"))
	var out []string
	for _, e := range entries {
		name := "?"
		if data, err := os.ReadFile(filepath.Join(state, "sandboxes", e.Name(), "sandbox.json")); err == nil {
			if m := podNameLabel.FindSubmatch(data); m != nil {
				name = string(m[1])
			}
		}
		out = append(out, fmt.Sprintf("%s (sandbox %.12s)", name, e.Name()))
	}
	return out
}

// copyLogs copies the run's own log files (agent.log, kubelet.log, shim.log,
// recover.log: not the containers' logs) into dir, named after their path in
// the workspace.
func (w *workspace) copyLogs(dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	var n int
	err := filepath.WalkDir(w.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch d.Name() {
			case "logs", "root", "runtime", "state", "pods":
				return filepath.SkipDir // container logs, images, layers, pod data
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".log") || !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(w.dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if err := os.WriteFile(filepath.Join(dir, strings.ReplaceAll(rel, "/", "_")), data, 0o644); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// stopMessage says how a nodekit-kubelet the run started was stopped, with the
// time it took to stop its pods and its exit.
func stopMessage(s daemon.Stopped) string {
	if s.How == daemon.Terminated {
		return fmt.Sprintf("%s in %s (exit: %v)", s, s.Took.Round(time.Millisecond), s.Err)
	}
	return s.String()
}
