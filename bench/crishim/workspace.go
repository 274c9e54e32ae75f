package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/bench/internal/daemon"
	"github.com/nodekit-dev/nodekit/bench/internal/leftover"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/bench/internal/rundir"
	"github.com/nodekit-dev/nodekit/internal/cgroupmount"
	"github.com/nodekit-dev/nodekit/internal/cmdline"
	"github.com/nodekit-dev/nodekit/internal/containerdtest"
)

// workspace is everything one benchmark run creates: a temp dir /tmp/nkbench-<id>
// holding all files, sockets and mounts, and a cgroup parent /nkbench-<id> holding
// every cgroup. cleanup undoes all of it and says what it did.
type workspace struct {
	dir    string // /tmp/nkbench-<id>
	id     string
	cgroup string // /nkbench-<id>
	runc   string // absolute path of the runc binary
	out    io.Writer

	mu        sync.Mutex
	runcRoots []string         // runc --root dirs: containers left there are deleted
	daemons   []*daemon.Daemon // stopped in reverse order
	runtimes  []*criRuntime    // pods removed through CRI first
	ctdUsed   bool             // containerd was started: look for its leftovers
	pods      []string         // sandbox ids (both runtimes): containerd shim sockets, CNI cache files
	hostDirs  map[string]bool  // host dirs containerd may create outside the workspace → existed before
	stateFS   string           // when set, runtimes keep their state on this tmpfs (see -state-tmpfs)

	// -mode critest
	registry   string            // host:port of the test image registry on 127.0.0.1 ("": none)
	registries string            // nodekit's registry configuration mirroring critest's registries to it
	foreign    []*foreignCgroups // cgroups a runtime creates outside /nkbench-<id> (critest asks for /test.slice)
}

// workspacePrefix names the workspace directory and cgroup: /tmp/nkbench-<id>,
// /nkbench-<id>.
const workspacePrefix = "nkbench-"

func newWorkspace(runcBin string, out io.Writer) (*workspace, error) {
	d, err := rundir.New(workspacePrefix, 0o700)
	if err != nil {
		return nil, err
	}
	return &workspace{dir: d.Path, id: d.ID, cgroup: d.Cgroup, runc: runcBin, out: out}, nil
}

// existingWorkspace is the workspace of an earlier run that could not clean up
// (it was killed): `crishim -cleanup /tmp/nkbench-<id>`. Its daemons are found by
// their command lines, every runc root it may have used is searched, and host
// directories are left alone (who created them is unknown).
func existingWorkspace(dir, runcBin string, out io.Writer) (*workspace, error) {
	d, err := rundir.Existing(dir, workspacePrefix)
	if err != nil {
		return nil, fmt.Errorf("-cleanup %w", err)
	}
	w := &workspace{dir: d.Path, id: d.ID, cgroup: d.Cgroup, runc: runcBin, out: out, ctdUsed: true}
	for _, state := range []string{w.path("nodekit", "state"), w.path("run", "nodekit")} {
		w.runcRoots = append(w.runcRoots, filepath.Join(state, "runc"))
	}
	for _, state := range []string{w.path("containerd", "state"), w.path("run", "containerd")} {
		w.runcRoots = append(w.runcRoots, filepath.Join(state, "runc", "k8s.io"))
	}
	w.runcRoots = append(w.runcRoots, w.path("floor", "runc"))
	return w, nil
}

// containerdSocket is the address of the workspace's containerd.
func (w *workspace) containerdSocket() string { return w.path("containerd", "containerd.sock") }

func (w *workspace) path(elem ...string) string {
	return filepath.Join(append([]string{w.dir}, elem...)...)
}

// stateDir is where runtime name keeps its runtime state: beside its root in the
// workspace, or on the workspace's tmpfs with -state-tmpfs.
func (w *workspace) stateDir(name string) string {
	if w.stateFS != "" {
		return filepath.Join(w.stateFS, name)
	}
	return w.path(name, "state")
}

// mountStateTmpfs mounts a tmpfs at <workspace>/run for the runtimes' state (as
// /run is a tmpfs on most distributions; not on this test machine).
func (w *workspace) mountStateTmpfs() error {
	dir := w.path("run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755,size=1g"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	w.stateFS = dir
	return nil
}

// setUpState puts the runtimes' state dirs on a tmpfs if stateTmpfs is set
// (mountStateTmpfs) and says where roots and state dirs are, for the results'
// notes.
func (w *workspace) setUpState(stateTmpfs bool) (string, error) {
	if !stateTmpfs {
		return "roots and state dirs on " + fsType(w.dir) + " (the workspace's filesystem)", nil
	}
	if err := w.mountStateTmpfs(); err != nil {
		return "", err
	}
	return "state dirs (nodekit --state, containerd state) on a tmpfs (-state-tmpfs); roots on " + fsType(w.dir), nil
}

func (w *workspace) addDaemon(d *daemon.Daemon) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.daemons = append(w.daemons, d)
}

func (w *workspace) addRuntime(r *criRuntime) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.runtimes = append(w.runtimes, r)
}

func (w *workspace) addRuncRoot(root string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.runcRoots = append(w.runcRoots, root)
}

func (w *workspace) addPod(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pods = append(w.pods, id)
}

// noteHostDirs records which of containerdtest.HostDirs (created outside the
// runtimes' root and state whatever their config says) exist before the runtimes start,
// so cleanup removes only those the run created (and only when empty).
func (w *workspace) noteHostDirs() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hostDirs = map[string]bool{}
	for _, d := range containerdtest.HostDirs {
		_, err := os.Stat(d)
		w.hostDirs[d] = err == nil
	}
}

// cleanup removes everything the run created, in dependency order, and prints each
// step. It never stops at an error: every step runs.
func (w *workspace) cleanup() {
	say := func(format string, a ...any) { fmt.Fprintf(w.out, "cleanup: "+format+"\n", a...) }
	w.mu.Lock()
	defer w.mu.Unlock()

	// 1. Pods, through CRI, while the daemons still run.
	for _, r := range w.runtimes {
		if r.daemon != nil && r.daemon.Exited() {
			say("%s: daemon already gone, cannot remove pods through CRI", r.name)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		for _, fc := range w.foreign {
			if fc.runtime == r.name {
				fc.addIDs(r.objectIDs(ctx)...)
			}
		}
		n, err := r.removeAllPods(ctx)
		cancel()
		if err != nil {
			say("%s: removed %d pods through CRI; errors: %v", r.name, n, err)
		} else {
			say("%s: removed %d pods through CRI", r.name, n)
		}
		r.close()
	}

	// 2. Daemons, by the PIDs we started, newest first. (With -cleanup, those of
	// the killed run: found by their command lines naming the workspace.)
	for i := len(w.daemons) - 1; i >= 0; i-- {
		say("%s", w.daemons[i].Stop(10*time.Second))
	}
	if w.daemons == nil {
		if procs, err := procfs.List(); err == nil {
			for _, p := range procs {
				if isDaemonOf(p.Args, w.dir) {
					say("%s", daemon.StopPID(p.PID, filepath.Base(p.Args[0]), 10*time.Second))
				}
			}
		}
	}

	// 3. Containers left in our runc roots (the floor's, nodekit's, containerd's).
	for _, root := range w.runcRoots {
		found, err := leftover.DeleteRuncContainers(w.runc, root)
		if err != nil {
			say("%v", err)
		}
		for _, c := range found {
			say("%s", c)
		}
	}

	// 4. Helper processes left behind: nodekit monitors whose config is in the
	// workspace, containerd shims of our socket. By PID, SIGKILL, then wait for
	// them to go. A shim's -id names its sandbox (for its socket, below).
	killed, err := leftover.KillProcs(func(p procfs.Proc) bool {
		if w.ctdUsed && containerdtest.IsShim(p.Args, w.containerdSocket()) {
			w.pods = append(w.pods, cmdline.FlagValue(p.Args, "id"))
			return true
		}
		return leftover.IsMonitorUnder(p.Args, w.dir)
	})
	if err != nil {
		say("%v", err)
	}
	for _, p := range killed {
		say("killed leftover %s (pid %d)", filepath.Base(p.Args[0]), p.PID)
	}

	// 5. Files outside the workspace: containerd's shim sockets, libcni's cache.
	var sockets, results int
	for _, id := range w.pods {
		if w.ctdUsed && os.Remove(containerdtest.ShimSocket(w.containerdSocket(), containerdtest.Namespace, id)) == nil {
			sockets++
		}
		matches, _ := filepath.Glob("/var/lib/cni/results/*-" + id + "-*")
		for _, m := range matches {
			if os.Remove(m) == nil {
				results++
			}
		}
	}
	if sockets+results > 0 {
		say("removed %d leftover shim sockets from /run/containerd/s and %d CNI cache files from /var/lib/cni/results", sockets, results)
	}
	for i := len(containerdtest.HostDirs) - 1; i >= 0; i-- {
		d := containerdtest.HostDirs[i]
		if existed, known := w.hostDirs[d]; known && !existed {
			if err := os.Remove(d); err == nil {
				say("removed %s (created by this run, now empty)", d)
			} else if !errors.Is(err, fs.ErrNotExist) {
				say("kept %s (created during this run but not empty: other users?)", d)
			}
		}
	}

	// 6. Mounts under the workspace (overlay rootfs, shm tmpfs, pinned nsfs), deepest first.
	unmounted, errs := leftover.Unmount(w.dir)
	for _, err := range errs {
		say("%v", err)
	}
	say("unmounted %d mounts under %s", unmounted, w.dir)

	// 7. Cgroups under /nkbench-<id> in every hierarchy, deepest first.
	removed, errs := leftover.RemoveCgroup(w.cgroup, time.Now().Add(10*time.Second))
	for _, err := range errs {
		say("%v", err)
	}
	say("removed %d cgroup directories under %s", removed, w.cgroup)

	// 7b. Cgroups of our pods outside /nkbench-<id> (critest's /test.slice for
	// containerd 1.6).
	for _, fc := range w.foreign {
		fc.cleanup(say)
	}

	// 8. The workspace itself.
	rundir.Remove(w.dir, say)
}

// removePodCgroup removes the cgroup parent a pod was given (in every hierarchy),
// between iterations: one attempt, failures are left for the final cleanup.
func (w *workspace) removePodCgroup(parent string) {
	leftover.RemoveCgroup(parent, time.Time{})
}

// foreignCgroups are the cgroups a runtime creates outside /nkbench-<id> because
// its client asked for a cgroup parent: critest asks a runtime without the
// RuntimeConfig RPC (containerd 1.6) for /test.slice. containerd 1.6 turns a
// ".slice" parent into the systemd-style cgroupsPath "test.slice:cri-containerd:<id>"
// even with the cgroupfs driver, and runc's cgroupfs driver takes that as one
// directory name relative to its own cgroup (the shim's, containerd's, ours): in
// each hierarchy, <our cgroup>/test.slice:cri-containerd:<id> (at the root where we
// are at the root). A runtime that honoured the parent would use /test.slice/<id>.
// runc removes them with their containers; cleanup removes those of the runtime's
// own pods and containers that are left, found by id, and nothing else.
type foreignCgroups struct {
	parent  string // test.slice
	runtime string // the criRuntime whose pods go there

	mu  sync.Mutex
	ids map[string]bool // sandbox and container ids of the runtime
}

func (w *workspace) addForeignCgroups(runtime, parent string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.foreign = append(w.foreign, newForeignCgroups(runtime, parent))
}

func newForeignCgroups(runtime, parent string) *foreignCgroups {
	return &foreignCgroups{parent: strings.Trim(parent, "/"), runtime: runtime, ids: map[string]bool{}}
}

// noteIDs tells the foreign cgroups of runtime about ids it created.
func (w *workspace) noteIDs(runtime string, ids ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, fc := range w.foreign {
		if fc.runtime == runtime {
			fc.addIDs(ids...)
		}
	}
}

func (fc *foreignCgroups) addIDs(ids ...string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for _, id := range ids {
		if id != "" && !strings.ContainsAny(id, "/:") && id != "." && id != ".." {
			fc.ids[id] = true
		}
	}
}

// owns reports whether the cgroup directory dir is one of ours.
func (fc *foreignCgroups) owns(dir string) bool {
	name := filepath.Base(dir)
	if id, ok := strings.CutPrefix(name, fc.parent+":cri-containerd:"); ok {
		return fc.ids[id]
	}
	return fc.ids[name] && filepath.Base(filepath.Dir(dir)) == fc.parent
}

// find walks every cgroup hierarchy (a few levels deep) for our cgroups.
func (fc *foreignCgroups) find(mountPoints []string) []string {
	var out []string
	for _, mp := range mountPoints {
		base := strings.Count(mp, "/")
		// The callback skips what cannot be read and never fails the walk.
		_ = filepath.WalkDir(mp, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if p != mp && fc.owns(p) {
				out = append(out, p)
				return filepath.SkipDir
			}
			if strings.Count(p, "/")-base >= 6 {
				return filepath.SkipDir
			}
			return nil
		})
	}
	return out
}

func (fc *foreignCgroups) cleanup(say func(string, ...any)) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	mountPoints, err := cgroupmount.Points()
	if err != nil {
		say("%v", err)
		return
	}
	var removed int
	deadline := time.Now().Add(5 * time.Second)
	for _, dir := range fc.find(mountPoints) {
		n, err := leftover.RemoveCgroupTree(dir, deadline)
		removed += n
		if err != nil {
			say("%v", err)
		}
	}
	say("removed %d leftover cgroups of %s's pods and containers named after parent %s (%d ids known)", removed, fc.runtime, fc.parent, len(fc.ids))
}
