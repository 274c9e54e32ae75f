package leftover

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/internal/cgroupmount"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

func TestIsMonitorUnder(t *testing.T) {
	const state = "/tmp/nkbench-1/nodekit/state"
	tests := []struct {
		name string
		args []string
		want bool
	}{
		{"ours", []string{"/work/main/bin/nodekit-monitor", state + "/containers/abc/monitor.json"}, true},
		{"bare name", []string{"nodekit-monitor", state + "/containers/abc/monitor.json"}, true},
		{"another state dir sharing the prefix", []string{"nodekit-monitor", state + "2/containers/abc/monitor.json"}, false},
		{"another daemon", []string{"nodekit-monitor", "/run/nodekit/containers/abc/monitor.json"}, false},
		{"an infra process", []string{"/bin/nodekit-monitor", "pause", state + "/x"}, false},
		{"not a monitor", []string{"/bin/cat", state + "/containers/abc/monitor.json"}, false},
		{"no config", []string{"nodekit-monitor"}, false},
		{"nothing", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsMonitorUnder(tt.args, state); got != tt.want {
				t.Errorf("IsMonitorUnder(%q) = %v, want %v", tt.args, got, tt.want)
			}
			if got := IsMonitorUnder(tt.args, state+"/"); got != tt.want {
				t.Errorf("IsMonitorUnder(%q, dir with a slash) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

const testMountinfo = `22 1 0:21 / /tmp rw - ext4 /dev/vda rw
29 22 0:39 / /tmp/nkbench-1 rw - tmpfs tmpfs rw
30 22 0:40 / /tmp/nkbench-1/c/state/shm rw - tmpfs shm rw
31 22 0:41 / /tmp/nkbench-1/c/state/rootfs rw - overlay overlay rw
32 31 0:42 / /tmp/nkbench-1/c/state/rootfs/proc rw - proc proc rw
33 22 0:4 net:[4026532] /tmp/nkbench-1/c/state/netns/cni-1 rw - nsfs nsfs rw
34 22 0:43 / /tmp/nkbench-12/other rw - tmpfs tmpfs rw
35 22 0:44 / /tmp/nkbench-1/with\040space rw - tmpfs tmpfs rw
36 22 0:45 / /tmp/nkbench-1/c/state/shm rw - tmpfs shm rw
37 1 0:46 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
38 1 0:47 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
39 1 0:46 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
`

func TestMountsUnder(t *testing.T) {
	mounts, err := mountinfo.GetMountsFromReader(strings.NewReader(testMountinfo), mountinfo.PrefixFilter("/tmp/nkbench-1"))
	if err != nil {
		t.Fatal(err)
	}
	got := mountsUnder(mounts, "/tmp/nkbench-1")
	want := []string{
		"/tmp/nkbench-1/c/state/netns/cni-1", // deepest first; equally deep: the later mount first
		"/tmp/nkbench-1/c/state/rootfs/proc",
		"/tmp/nkbench-1/c/state/shm", // stacked twice: the upper one first
		"/tmp/nkbench-1/c/state/rootfs",
		"/tmp/nkbench-1/c/state/shm",
		"/tmp/nkbench-1/with space", // not the workspace itself, nor /tmp/nkbench-12
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mountsUnder:\n got %q\nwant %q", got, want)
	}
}

func TestRemoveCgroupTree(t *testing.T) {
	root := filepath.Join(t.TempDir(), "nkbench-1")
	for _, d := range []string{"a/b/c", "a/d", "e"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n, err := RemoveCgroupTree(root, time.Time{})
	if err != nil || n != 6 {
		t.Errorf("RemoveCgroupTree = %d, %v; want 6 directories", n, err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", root, err)
	}
	if n, err := RemoveCgroupTree(root, time.Time{}); n != 0 || err != nil {
		t.Errorf("RemoveCgroupTree of a missing tree = %d, %v", n, err)
	}

	// A directory that will not go (a file in it: as a busy cgroup): one
	// attempt with a past deadline, an error naming it; the rest goes.
	for _, d := range []string{"busy", "free"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "busy", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	n, err = RemoveCgroupTree(root, time.Time{})
	if n != 1 || err == nil || !strings.Contains(err.Error(), "remove cgroup "+filepath.Join(root, "busy")) {
		t.Errorf("RemoveCgroupTree with a busy cgroup = %d, %v; want 1 removed and an error naming it", n, err)
	}
}

// TestRemoveCgroup creates a cgroup tree in every hierarchy of the machine and
// removes it.
func TestRemoveCgroup(t *testing.T) {
	testenv.RequireRoot(t)
	mps, err := cgroupmount.Points()
	if err != nil {
		t.Fatal(err)
	}
	cg := "/nkleftover-test-" + randomID(t)
	var made int
	for _, mp := range mps {
		if err := os.MkdirAll(filepath.Join(mp, cg, "pod", "ctr"), 0o755); err != nil {
			t.Logf("%s: %v (skipped)", mp, err) // a read-only or named hierarchy
			continue
		}
		made += 3
	}
	t.Cleanup(func() { RemoveCgroup(cg, time.Time{}) })
	if made == 0 {
		testenv.Skip(t, "no writable cgroup hierarchy")
	}
	n, errs := RemoveCgroup(cg, time.Now().Add(5*time.Second))
	if n != made || len(errs) > 0 {
		t.Errorf("RemoveCgroup = %d, %v; want %d directories removed", n, errs, made)
	}
	for _, mp := range mps {
		if _, err := os.Stat(filepath.Join(mp, cg)); err == nil {
			t.Errorf("%s still there", filepath.Join(mp, cg))
		}
	}
}

// TestUnmount mounts tmpfs filesystems under a directory, one stacked and one
// nested, and unmounts them all.
func TestUnmount(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	mount := func(p string) {
		t.Helper()
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", p, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", p, err)
		}
	}
	mount(filepath.Join(dir, "a"))
	mount(filepath.Join(dir, "a", "b c"))
	mount(filepath.Join(dir, "a", "b c")) // stacked
	mount(filepath.Join(dir, "d"))
	t.Cleanup(func() { Unmount(dir) })
	got, err := MountsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a", "b c"), filepath.Join(dir, "a", "b c"), filepath.Join(dir, "d"), filepath.Join(dir, "a")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MountsUnder:\n got %q\nwant %q", got, want)
	}
	n, errs := Unmount(dir, filepath.Join(dir, "nothing-here"))
	if n != 4 || len(errs) > 0 {
		t.Errorf("Unmount = %d, %v; want 4 unmounted", n, errs)
	}
	if left, err := MountsUnder(dir); err != nil || len(left) > 0 {
		t.Errorf("after Unmount: %q, %v", left, err)
	}
}

func TestKillProcs(t *testing.T) {
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	target := cmds[0].Process.Pid
	killed, err := KillProcs(func(p procfs.Proc) bool { return p.PID == target })
	if err != nil {
		t.Fatal(err)
	}
	if len(killed) != 1 || killed[0].PID != target || !slices.Equal(killed[0].Args, []string{"sleep", "60"}) {
		t.Errorf("KillProcs = %+v, want process %d only", killed, target)
	}
	if procfs.Running(target) {
		t.Errorf("process %d still runs", target)
	}
	if !procfs.Running(cmds[1].Process.Pid) {
		t.Errorf("process %d, not selected, was killed", cmds[1].Process.Pid)
	}
}

// TestDeleteRuncContainers runs a stand-in for runc that lists two containers
// and fails to delete one.
func TestDeleteRuncContainers(t *testing.T) {
	dir := t.TempDir()
	runc := filepath.Join(dir, "runc")
	script := `#!/bin/sh
# runc --root ROOT list -q | runc --root ROOT delete --force ID
[ -d "$2" ] || exit 1
case "$3" in
list) printf 'good\nbad\n' ;;
delete) [ "$5" = good ] && echo "$5" >> "$2/deleted" && exit 0; echo "container $5 is stuck" >&2; exit 1 ;;
esac
`
	if err := os.WriteFile(runc, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	found, err := DeleteRuncContainers(runc, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[0] != (RuncContainer{ID: "good", Root: root}) || found[1].ID != "bad" || found[1].Err == nil ||
		!strings.HasPrefix(found[1].Err.Error(), "runc delete --force bad (root "+root+"): ") || !strings.HasSuffix(found[1].Err.Error(), "container bad is stuck") {
		t.Errorf("DeleteRuncContainers = %+v, want good deleted, then bad with runc's message", found)
	}
	if got, want := found[0].String(), "deleted leftover container good (runc root "+root+")"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := found[1].String(); got != found[1].Err.Error() {
		t.Errorf("String() = %q, want the error", got)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "deleted")); string(data) != "good\n" {
		t.Errorf("runc delete ran for %q, want good", data)
	}
	// A missing root holds nothing; one that cannot be listed is an error.
	if found, err := DeleteRuncContainers(runc, filepath.Join(dir, "missing")); found != nil || err != nil {
		t.Errorf("missing root: %+v, %v", found, err)
	}
	if _, err := DeleteRuncContainers(filepath.Join(dir, "no-runc"), root); err == nil || !strings.Contains(err.Error(), "runc list --root "+root) {
		t.Errorf("root that cannot be listed: %v", err)
	}
}

func randomID(t *testing.T) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
