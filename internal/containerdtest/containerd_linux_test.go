package containerdtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// noopCNI configures nothing and reports an eth0 with a documentation
// address: containerd 1.6 wants one, and this test needs no network.
const noopCNI = `#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD) printf '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"%s"}],"ips":[{"address":"192.0.2.1/32","interface":0}]}' "$CNI_NETNS" ;;
VERSION) printf '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}' ;;
esac
`

// TestStartCleanup: a containerd starts with its CRI plugin ready and serves
// CRI on its socket; imported images are there; stopped with a pod running,
// its shim stays, and Cleanup finds and removes the shim, the runc containers,
// the shim socket, the CNI cache entries and the mounts.
func TestStartCleanup(t *testing.T) {
	testenv.RequireRoot(t)
	if err := Missing(); err != nil {
		testenv.Skip(t, err.Error())
	}
	runc := testenv.Binary(t, "runc")
	images := []string{testenv.Image(t, "busybox"), testenv.Image(t, "pause")}
	loopback := "/usr/lib/cni/loopback"
	if _, err := os.Stat(loopback); err != nil {
		testenv.Skip(t, loopback+" missing; run `sudo make setup` (containernetworking-plugins)")
	}
	base, err := os.MkdirTemp("", "nkct-")
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	rand.Read(b[:])
	cgroup := "/nodekit-containerdtest-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		for _, m := range MountsUnder(base) {
			t.Errorf("mount left under %s: %s", base, m)
		}
		removeCgroups(t, cgroup)
		os.RemoveAll(base)
	})
	confDir, binDir := filepath.Join(base, "net.d"), filepath.Join(base, "cni")
	for _, d := range []string{confDir, binDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := `{"cniVersion":"1.0.0","name":"nkct-` + hex.EncodeToString(b[:]) + `","plugins":[{"type":"nkct-noop"}]}`
	if err := os.WriteFile(filepath.Join(confDir, "10-test.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(binDir, "nkct-noop"), []byte(noopCNI), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(loopback, filepath.Join(binDir, "loopback")); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := Config{Dir: filepath.Join(base, "ctd"), Runc: runc, CNIConfDir: confDir, CNIBinDir: binDir}
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Cleanup() })
	if err := c.Import(ctx, images...); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+c.Address(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt, img := runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.GetRuntimeName() != "containerd" {
		t.Fatalf("CRI Version: %v, %v; want runtime name containerd", v, err)
	}
	for _, ref := range []string{"nodekit.local/busybox:latest", DefaultSandboxImage} {
		if st, err := img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil || st.GetImage() == nil {
			t.Fatalf("image %s after import: %v", ref, err)
		}
	}

	// A pod with a running container.
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "test", Uid: "uid-" + hex.EncodeToString(b[:])},
		LogDirectory: filepath.Join(base, "logs"),
		Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: cgroup + "/pod"},
	}
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  sb.GetPodSandboxId(),
		SandboxConfig: sbCfg,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
			Image:    &runtimeapi.ImageSpec{Image: "nodekit.local/busybox:latest"},
			Command:  []string{"sleep", "600"},
			LogPath:  "c.log",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.GetContainerId()}); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	// Stopped, containerd leaves its shim (and everything under it) running.
	if err := c.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !c.Exited() {
		t.Fatal("containerd still runs after Stop")
	}
	shims, err := Shims(c.Address())
	if err != nil || len(shims) != 1 || shims[0].ID != sb.GetPodSandboxId() {
		t.Fatalf("shims after stop: %+v (%v), want the sandbox's", shims, err)
	}
	if _, err := os.Stat(ShimSocket(c.Address(), Namespace, sb.GetPodSandboxId())); err != nil {
		t.Errorf("the shim's socket: %v", err)
	}

	found := c.Cleanup() // the sandbox id comes from the shim
	for _, want := range []string{"shim pid", "runc container " + sb.GetPodSandboxId(), "runc container " + ctr.GetContainerId(),
		"shim socket", "CNI cache entry", "/rootfs, unmounted", "/shm, unmounted", "/netns/"} {
		if !slices.ContainsFunc(found, func(f string) bool { return strings.Contains(f, want) }) {
			t.Errorf("Cleanup did not report %q; it found:\n%s", want, strings.Join(found, "\n"))
		}
	}
	if shims, _ := Shims(c.Address()); len(shims) > 0 {
		t.Errorf("shims after Cleanup: %+v", shims)
	}
	if m := append(MountsUnder(cfg.Dir), MountsUnder(cfg.StateDir())...); len(m) > 0 {
		t.Errorf("mounts after Cleanup: %v", m)
	}
	if out, err := exec.Command(runc, "--root", cfg.RuncRoot(), "list", "-q").Output(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("runc containers after Cleanup: %q (%v)", out, err)
	}
	if m, _ := filepath.Glob("/var/lib/cni/results/*-" + sb.GetPodSandboxId() + "-*"); len(m) > 0 {
		t.Errorf("CNI cache entries after Cleanup: %v", m)
	}
	if again := c.Cleanup(); len(again) > 0 {
		t.Errorf("a second Cleanup found %v", again)
	}
}

// TestMountsUnder mounts tmpfs filesystems under a directory, one stacked and
// one nested, and finds them, the latest first.
func TestMountsUnder(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "a", "b c"), filepath.Join(dir, "d")
	for _, p := range []string{a, b, b, c} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", p, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", p, err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", p, err)
			}
		})
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil { // dir itself is not under dir
		t.Fatal(err)
	}
	got := MountsUnder(dir + "/")
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		t.Errorf("unmount %s: %v", dir, err)
	}
	if want := []string{c, b, b, a}; !slices.Equal(got, want) {
		t.Errorf("MountsUnder = %q, want %q", got, want)
	}
}

// removeCgroups removes the cgroup tree at parent in every hierarchy (runc
// removed the containers' cgroups; the pod's parent is the client's).
func removeCgroups(t *testing.T, parent string) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		var dirs []string
		// The callback skips what cannot be read and never fails the walk.
		_ = filepath.WalkDir(filepath.Join(m.Mountpoint, parent), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil {
				t.Errorf("remove cgroup %s: %v", dirs[i], err)
			}
		}
	}
}
