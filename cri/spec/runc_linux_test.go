package spec

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testrootfs"
)

// busyboxRootfs makes a rootfs holding the host's static busybox with its
// applets, and the test passwd and group files.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	root := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	for _, d := range []string{"tmp", "work"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testrootfs.Busybox(t, root)
	return root
}

// pinnedNamespaces starts a process in new network, IPC and UTS namespaces
// and returns their paths, standing in for the pod's pinned namespace files.
func pinnedNamespaces(t *testing.T) Namespaces {
	t.Helper()
	unshare := testenv.LookPath(t, "unshare")
	cmd := exec.Command(unshare, "--net", "--ipc", "--uts", "--", testenv.LookPath(t, "busybox"), "sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start namespace holder: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Wait until unshare has exec'd the sleeper in its new namespaces.
	self, err := os.Readlink("/proc/self/ns/uts")
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("/proc/%d/ns/", cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		cur, err := os.Readlink(ns + "uts")
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
		if err == nil && cur != self && strings.HasSuffix(exe, "busybox") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace holder did not unshare: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return Namespaces{Network: ns + "net", IPC: ns + "ipc", UTS: ns + "uts"}
}

// runContainer writes s as a bundle, runs it with runc to completion and
// returns its output.
func runContainer(t *testing.T, runc string, s *specs.Spec) string {
	t.Helper()
	bundle := t.TempDir()
	state := t.TempDir()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	id := "spec-test-" + filepath.Base(bundle)
	t.Cleanup(func() {
		_ = exec.Command(runc, "--root", state, "delete", "-f", id).Run()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, runc, "--root", state, "run", "--bundle", bundle, id)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("runc run: %v\nstdout:\n%s\nstderr:\n%s\nconfig.json:\n%s", err, out, stderr.String(), data)
	}
	return string(out)
}

// lines parses "key=value" lines.
func lines(out string) map[string]string {
	m := map[string]string{}
	for l := range strings.SplitSeq(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestRuncRunsGeneratedSpec(t *testing.T) {
	testenv.RequireRoot(t)
	runc := testenv.Binary(t, "runc")
	host, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	rootfs := busyboxRootfs(t)
	files := t.TempDir()
	mustWrite(t, filepath.Join(files, "hosts"), "127.0.0.1 localhost podhost\n")
	mustWrite(t, filepath.Join(files, "resolv.conf"), "nameserver 127.0.0.53\n")
	mustWrite(t, filepath.Join(files, "hostname"), "podhost\n")
	shm := filepath.Join(files, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	mustWrite(t, filepath.Join(data, "hello"), "from the host\n")
	cgroup := "/nodekit-spec-test-" + filepath.Base(files)

	in := baseInput(rootfs)
	in.Host = &host
	in.Namespaces = pinnedNamespaces(t)
	in.Files = SandboxFiles{Hosts: filepath.Join(files, "hosts"), Resolv: filepath.Join(files, "resolv.conf"), Hostname: filepath.Join(files, "hostname"), Shm: shm}
	in.CgroupsPath = cgroup
	in.Image.Entrypoint = []string{"/bin/sh", "-c"}
	in.Config.Args = []string{`
echo uid=$(id -u); echo gid=$(id -g); echo groups=$(id -G)
echo cwd=$(pwd); echo env_hostname=$HOSTNAME; echo uts=$(hostname)
echo hosts=$(cat /etc/hosts); echo data=$(cat /data/hello)
echo nofile=$(ulimit -n)
echo capbnd=$(grep CapBnd /proc/self/status | cut -f2)
echo memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)
echo shm_rmid=$(cat /proc/sys/kernel/shm_rmid_forced)
if touch /rootfs-write 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi
if echo x > /dev/mynull; then echo devnull=ok; fi
echo firmware=$(ls -A /sys/firmware | wc -l)
`}
	in.Config.WorkingDir = "/work"
	in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/data", HostPath: data, Readonly: true}}
	in.Config.Devices = []*runtime.Device{{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rwm"}}
	in.Config.Linux = &runtime.LinuxContainerConfig{
		Resources: &runtime.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000},
		SecurityContext: &runtime.LinuxContainerSecurityContext{
			RunAsUsername:      "app",
			SupplementalGroups: []int64{2000},
			ReadonlyRootfs:     true,
			NoNewPrivs:         true,
			Capabilities:       &runtime.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"NET_BIND_SERVICE"}},
		},
	}
	in.Sandbox.Linux = &runtime.LinuxPodSandboxConfig{Sysctls: map[string]string{"kernel.shm_rmid_forced": "1"}}
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	got := lines(runContainer(t, runc, s))
	nofile := uint64(DefaultNoFile)
	if host.MaxNoFile != 0 && host.MaxNoFile < nofile {
		nofile = host.MaxNoFile
	}
	want := map[string]string{
		"uid":          "1000",
		"gid":          "1000",
		"groups":       "1000 44 63 2000",
		"cwd":          "/work",
		"env_hostname": "podhost",
		"uts":          "podhost",
		"hosts":        "127.0.0.1 localhost podhost",
		"data":         "from the host",
		"nofile":       fmt.Sprint(nofile),
		"capbnd":       "0000000000000400",
		"memory":       fmt.Sprint(64 << 20),
		"shm_rmid":     "1",
		"rootfs":       "ro",
		"devnull":      "ok",
		"firmware":     "0", // masked: an empty tmpfs
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestRuncRunsPrivilegedSpec(t *testing.T) {
	testenv.RequireRoot(t)
	runc := testenv.Binary(t, "runc")
	host, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	in := baseInput(busyboxRootfs(t))
	in.Host = &host
	in.Namespaces = Namespaces{} // a host-network pod
	in.Files = SandboxFiles{}
	in.CgroupsPath = "/nodekit-spec-test-priv-" + filepath.Base(t.TempDir())
	in.Image.Entrypoint = []string{"/bin/sh", "-c"}
	in.Config.Args = []string{`echo capeff=$(grep CapEff /proc/self/status | cut -f2); echo loop=$(ls /dev | grep -c .); echo sys=$(grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1)`}
	in.Config.Linux = &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{Privileged: true}}
	in.Sandbox.Linux = &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{Privileged: true}}
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	got := lines(runContainer(t, runc, s))
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var ownEff string
	for l := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			ownEff = strings.TrimSpace(v)
		}
	}
	if got["capeff"] != ownEff {
		t.Errorf("container CapEff = %q, want the runtime's own %q", got["capeff"], ownEff)
	}
	if got["sys"] != "rw" {
		t.Errorf("/sys mounted %q, want rw", got["sys"])
	}
	if n := len(s.Linux.Devices); got["loop"] == "" || got["loop"] == "0" || n == 0 {
		t.Errorf("container /dev has %q entries for %d host devices", got["loop"], n)
	}
}

func TestDevicesDirectory(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	mknod := func(p string, mode uint32, major, minor uint32) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := mknodAt(p, mode, major, minor); err != nil {
			t.Fatalf("mknod %s: %v", p, err)
		}
	}
	mknod(filepath.Join(dir, "a"), charDevice, 1, 3)
	mknod(filepath.Join(dir, "sub", "b"), blockDevice, 7, 0)
	mknod(filepath.Join(dir, "pts", "0"), charDevice, 136, 0)           // skipped: pts
	mknod(filepath.Join(dir, "console"), charDevice, 5, 1)              // skipped: console
	mknod(filepath.Join(dir, "fifo"), fifoNode, 0, 0)                   // skipped: fifo
	mustWrite(t, filepath.Join(dir, "regular"), "not a device")         // skipped
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil { // skipped: links are not followed
		t.Fatal(err)
	}

	in := baseInput(writeRootfs(t, t.TempDir(), testPasswd, testGroup))
	in.Config.Devices = []*runtime.Device{{HostPath: dir, ContainerPath: "/dev/mine", Permissions: "rw"}}
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range s.Linux.Devices {
		got = append(got, fmt.Sprintf("%s %s %d:%d", d.Path, d.Type, d.Major, d.Minor))
	}
	equal(t, "devices", got, []string{"/dev/mine/a c 1:3", "/dev/mine/sub/b b 7:0"})
	rules := s.Linux.Resources.Devices
	if len(rules) != 3 || rules[1].Access != "rw" || rules[2].Type != "b" || *rules[2].Major != 7 {
		t.Errorf("device rules = %+v, want deny-all then c 1:3 rw and b 7:0 rw", rules)
	}
	// A fifo named directly is refused.
	in.Config.Devices = []*runtime.Device{{HostPath: filepath.Join(dir, "fifo")}}
	if _, err := Generate(in); err == nil {
		t.Error("a fifo was accepted as a device")
	}
	// A link named directly is followed.
	in.Config.Devices = []*runtime.Device{{HostPath: filepath.Join(dir, "link"), ContainerPath: "/dev/l"}}
	s, err = Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Linux.Devices; len(d) != 1 || d[0].Path != "/dev/l" || d[0].Minor != 3 {
		t.Errorf("devices = %+v, want /dev/l c 1:3", d)
	}
}

func TestDetectHost(t *testing.T) {
	h, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	_, statErr := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	if h.CgroupV2 != (statErr == nil) {
		t.Errorf("CgroupV2 = %v, but cgroup.controllers at the root: %v", h.CgroupV2, statErr)
	}
	if !h.CgroupV2 {
		_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		if h.SwapAccounting != (err == nil) {
			t.Errorf("SwapAccounting = %v, memsw: %v", h.SwapAccounting, err)
		}
	}
	if os.Geteuid() == 0 && !strings.Contains(strings.Join(h.Capabilities, ","), "CAP_CHOWN") {
		t.Errorf("Capabilities = %v, want CAP_CHOWN as root", h.Capabilities)
	}
	if h.MaxNoFile == 0 {
		t.Log("RLIMIT_NOFILE hard limit is unlimited")
	}
}

const (
	charDevice  = unix.S_IFCHR | 0o666
	blockDevice = unix.S_IFBLK | 0o660
	fifoNode    = unix.S_IFIFO | 0o644
)

func mknodAt(p string, mode, major, minor uint32) error {
	return unix.Mknod(p, mode, int(unix.Mkdev(major, minor)))
}
