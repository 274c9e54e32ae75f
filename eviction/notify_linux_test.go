package eviction

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

const memcgV1Root = "/sys/fs/cgroup/memory"

// memcgV1 creates a cgroup v1 memory cgroup for the test, skipping when the
// host has no cgroup v1 memory controller (cgroup v2 hosts).
func memcgV1(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	var st unix.Statfs_t
	if err := unix.Statfs(memcgV1Root, &st); err != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
		t.Skip("no cgroup v1 memory controller at " + memcgV1Root + " (a cgroup v2 host): the memcg threshold notifier is cgroup v1 only")
	}
	if _, err := os.Stat(filepath.Join(memcgV1Root, "cgroup.event_control")); err != nil {
		t.Skip("cgroup v1 memory controller without cgroup.event_control")
	}
	dir, err := os.MkdirTemp(memcgV1Root, "nodekit-eviction-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	})
	return dir
}

func memcgUsage(t *testing.T, dir string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// chargeMemcg runs a process in the cgroup that writes 32 MiB to a file: the
// page cache it fills is charged to the cgroup. It returns when the process
// has exited.
func chargeMemcg(t *testing.T, dir string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "fill")
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec dd if=/dev/zero of="$2" bs=1048576 count=32 2>/dev/null`, "sh", dir, file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("charge the cgroup: %v: %s", err, out)
	}
}

func readable(t *testing.T, fd int) bool {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if _, err := unix.Poll(fds, 0); err != nil {
		t.Fatal(err)
	}
	return fds[0].Revents&unix.POLLIN != 0
}

// The kernel signals the eventfd as soon as the cgroup's usage crosses the
// threshold: checked without waiting, right after the charging process exits.
func TestArmMemcgThresholdV1(t *testing.T) {
	dir := memcgV1(t)
	ev, err := armMemcgThreshold(dir, memcgUsage(t, dir)+8*mi)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ev)
	if readable(t, ev) {
		t.Fatal("event signalled before the threshold was crossed")
	}
	chargeMemcg(t, dir)
	if !readable(t, ev) {
		t.Fatalf("no event after crossing the threshold (usage %d)", memcgUsage(t, dir))
	}
}

func TestMemoryNotifierRunV1(t *testing.T) {
	dir := memcgV1(t)
	n, err := NewMemoryNotifier(MemoryNotifierOptions{Threshold: hardQ(SignalMemoryAvailable, "1Mi"), CgroupDir: dir, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if n.v2 {
		t.Fatal("cgroup v1 directory taken for cgroup v2")
	}
	armed := make(chan struct{}, 10)
	n.armed = func() { armed <- struct{}{} }
	// Notify at the current usage + 8 MiB: stats with no working set and
	// that much + the 1 MiB threshold available.
	target := uint64(memcgUsage(t, dir) + 8*mi)
	if err := n.UpdateThreshold(&statsapi.Summary{Node: statsapi.NodeStats{Memory: memStats(0, 0, target+mi)}}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	notified := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- n.Run(ctx, func() {
			select {
			case notified <- struct{}{}:
			default:
			}
		})
	}()
	<-armed
	chargeMemcg(t, dir)
	<-notified
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// The cgroup v2 path on this host's PSI file: the trigger is accepted and
// Run ends with its context.
func TestMemoryNotifierPSITrigger(t *testing.T) {
	testenv.RequireRoot(t)
	const psi = "/proc/pressure/memory"
	if _, err := os.Stat(psi); err != nil {
		t.Skip("kernel without PSI (" + psi + "): the cgroup v2 notifier needs it")
	}
	n := &MemoryNotifier{threshold: hardQ(SignalMemoryAvailable, "100Mi"), dir: t.TempDir(), log: discard(), v2: true, pressure: psi}
	armed := make(chan struct{}, 1)
	n.armed = func() { armed <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx, func() {}) }()
	select {
	case <-armed:
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestMemoryNotifierRunTwice(t *testing.T) {
	n := &MemoryNotifier{threshold: hardQ(SignalMemoryAvailable, "100Mi"), dir: t.TempDir(), log: discard()}
	n.wake = func() {} // as if Run were running
	if err := n.Run(context.Background(), func() {}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run: %v", err)
	}
}

// Run without a threshold yet only waits for its context.
func TestMemoryNotifierRunUnarmed(t *testing.T) {
	n := &MemoryNotifier{threshold: hardQ(SignalMemoryAvailable, "100Mi"), dir: t.TempDir(), log: discard()}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Run(ctx, func() { t.Error("notified") }); err != nil {
		t.Errorf("Run: %v", err)
	}
}
