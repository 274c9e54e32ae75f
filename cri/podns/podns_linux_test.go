package podns

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/nodekit-dev/nodekit/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestPinCreatesDistinctNamespacesAndUnpinRemovesThem(t *testing.T) {
	testenv.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "ns")
	pinned, err := Pin(Options{Dir: dir, Kinds: []Kind{Net, IPC, UTS}, Hostname: "pod-a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unpin(dir); err != nil {
			t.Error(err)
		}
	})

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, k := range []Kind{Net, IPC, UTS} {
		var pinnedSt, hostSt unix.Stat_t
		if err := unix.Stat(pinned.Path(k), &pinnedSt); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if err := unix.Stat("/proc/thread-self/ns/"+string(k), &hostSt); err != nil {
			t.Fatal(err)
		}
		if pinnedSt.Ino == hostSt.Ino {
			t.Errorf("%s namespace is the host's", k)
		}
	}
	// The pinned namespaces are usable: nsenter sees the hostname and a loopback
	// interface that is up.
	nsenter := testenv.LookPath(t, "nsenter")
	out, err := exec.Command(nsenter, "--uts="+pinned.Path(UTS), "hostname").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "pod-a" {
		t.Fatalf("hostname in pinned UTS ns = %q, %v", out, err)
	}
	ip := testenv.LookPath(t, "ip")
	out, err = exec.Command(nsenter, "--net="+pinned.Path(Net), ip, "-o", "link", "show", "lo").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "UP") {
		t.Fatalf("lo in pinned net ns: %q, %v", out, err)
	}
	out, _ = exec.Command(nsenter, "--net="+pinned.Path(Net), ip, "-o", "link").CombinedOutput()
	if n := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; n != 1 {
		t.Fatalf("pinned net ns has %d links, want only lo:\n%s", n, out)
	}
	// The process is unaffected: the thread that did the work rejoined the host's
	// namespaces, and a fresh thread still sees the host's hostname.
	host, _ := os.Hostname()
	if host == "pod-a" {
		t.Fatal("host hostname changed")
	}

	if err := Unpin(dir); err != nil {
		t.Fatal(err)
	}
	if err := Unpin(dir); err != nil {
		t.Fatalf("second Unpin: %v", err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), dir) {
		t.Fatalf("mounts under %s left behind", dir)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("files left in %s: %v", dir, entries)
	}
}

func TestPinOnlyRequestedKinds(t *testing.T) {
	testenv.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "ns")
	pinned, err := Pin(Options{Dir: dir, Kinds: []Kind{IPC}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unpin(dir); err != nil {
			t.Error(err)
		}
	})
	if pinned.Path(Net) != "" || pinned.Path(UTS) != "" || pinned.Path(IPC) == "" {
		t.Fatalf("pinned = %v, want only ipc", pinned)
	}
}

func TestPinFailureLeavesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "ns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A pre-existing uts file makes the pin fail after net was mounted.
	if err := os.WriteFile(filepath.Join(dir, "uts"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Pin(Options{Dir: dir, Kinds: []Kind{Net, UTS}}); err == nil {
		t.Fatal("Pin over an existing file succeeded")
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), dir) {
		t.Fatal("a failed Pin left a mount behind")
	}
}

// Pinning must leave every thread of the process in its namespaces, including the
// main thread, which the Go runtime can never retire.
func TestPinLeavesProcessNamespacesAlone(t *testing.T) {
	testenv.RequireRoot(t)
	before := threadNamespaces(t)
	for i := 0; i < 20; i++ {
		dir := filepath.Join(t.TempDir(), "ns")
		if _, err := Pin(Options{Dir: dir, Kinds: []Kind{Net, IPC, UTS}, Hostname: "x"}); err != nil {
			t.Fatal(err)
		}
		if err := Unpin(dir); err != nil {
			t.Fatal(err)
		}
	}
	if after := threadNamespaces(t); after != before {
		t.Fatalf("threads' namespaces changed:\nbefore %s\nafter  %s", before, after)
	}
}

// threadNamespaces lists the distinct net/ipc/uts namespaces of all threads.
func threadNamespaces(t *testing.T) string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		for _, k := range []string{"net", "ipc", "uts"} {
			l, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns", k))
			if err == nil {
				seen[l] = true
			}
		}
	}
	var out []string
	for l := range seen {
		out = append(out, l)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// Adopt pins namespaces that a process created inside a new user namespace; they
// outlive the process, carry the hostname and have loopback up.
func TestAdoptUserNamespaceOwnedNamespaces(t *testing.T) {
	testenv.RequireRoot(t)
	sleep := testenv.LookPath(t, "sleep")
	cmd := exec.Command(sleep, "100")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ns")
	pinned, err := Adopt(Options{Dir: dir, Kinds: []Kind{User, Net, IPC, UTS}, Hostname: "userns-pod"}, cmd.Process.Pid)
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unpin(dir); err != nil {
			t.Error(err)
		}
	})

	nsenter := testenv.LookPath(t, "nsenter")
	out, err := exec.Command(nsenter, "--user="+pinned.Path(User), "--uts="+pinned.Path(UTS), "hostname").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "userns-pod" {
		t.Fatalf("hostname in the adopted UTS ns = %q, %v", out, err)
	}
	out, err = exec.Command(nsenter, "--user="+pinned.Path(User), "cat", "/proc/self/uid_map").CombinedOutput()
	if err != nil || !strings.Contains(strings.Join(strings.Fields(string(out)), " "), "0 100000 65536") {
		t.Fatalf("uid_map in the adopted user ns = %q, %v", out, err)
	}
	ip := testenv.LookPath(t, "ip")
	out, err = exec.Command(nsenter, "--net="+pinned.Path(Net), ip, "-o", "link", "show", "lo").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "UP") {
		t.Fatalf("lo in the adopted net ns: %q, %v", out, err)
	}
	if err := Unpin(dir); err != nil {
		t.Fatal(err)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), dir) {
		t.Fatal("mounts left after Unpin")
	}
}
