package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/cri/image"
	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// buildForTest builds the images with the runner's Debian package cache
// (_output/critest/debs), skipping when a prerequisite is missing.
func buildForTest(t *testing.T) []testImage {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.LookPath(t, "apt-get")
	testenv.LookPath(t, "dpkg-deb")
	testenv.LookPath(t, "gcc")
	root := testenv.ModuleRoot(t)
	imgs, src, err := buildImages(context.Background(), buildOptions{
		debs:    &debCache{dir: filepath.Join(root, "_output", "critest", "debs")},
		pause:   testenv.Image(t, "pause"),
		created: mtime,
		arch:    runtime.GOARCH,
		scratch: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d images from %v", len(imgs), src)
	return imgs
}

func digests(t *testing.T, imgs []testImage) map[string]string {
	out := map[string]string{}
	for _, ti := range imgs {
		d, err := ti.img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out[strings.Join(ti.refs, ",")] = d.String()
	}
	return out
}

// The images are rebuilt byte for byte.
func TestImagesReproducible(t *testing.T) {
	a := digests(t, buildForTest(t))
	b := digests(t, buildForTest(t))
	if len(a) != 18 {
		t.Errorf("%d images, want 18", len(a))
	}
	for ref, d := range a {
		if b[ref] != d {
			t.Errorf("%s: %s, then %s", ref, d, b[ref])
		}
	}
}

// Every image critest names, pulled by its upstream name through nodekit's mirror
// configuration from the local registry (no other host is dialled), has the
// properties critest's specs check.
func TestImagesThroughMirrors(t *testing.T) {
	imgs := buildForTest(t)
	reg, err := startRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.close() })
	if err := reg.push(context.Background(), imgs); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "registries.toml")
	if err := os.WriteFile(cfg, []byte(mirrorsConfig(reg.host)), 0o644); err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
			t.Errorf("dialled %s", addr)
			return nil, fmt.Errorf("test: only loopback may be dialled, not %s", addr)
		}
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	store, err := image.New(image.Options{Root: t.TempDir(), RegistryConfig: cfg, Transport: tr,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	ids := map[string]string{}
	pull := func(ref string) image.Image {
		t.Helper()
		img, err := store.Pull(context.Background(), ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(img.RepoTags, ref) {
			t.Errorf("%s: tags %v", ref, img.RepoTags)
		}
		ids[ref] = img.ID
		return img
	}
	const gcr = "gcr.io/k8s-staging-cri-tools/"
	for ref, user := range map[string]string{
		gcr + "test-image-user-uid:latest":            "1002",
		gcr + "test-image-user-username:latest":       "www-data",
		gcr + "test-image-user-uid-group:latest":      "1003:1004",
		gcr + "test-image-user-username-group:latest": "www-data:1004",
		gcr + "test-image-predefined-group:latest":    "1000",
		"registry.k8s.io/pause:3.9":                   "65535:65535",
	} {
		if img := pull(ref); img.Config.User != user {
			t.Errorf("%s: user %q, want %q", ref, img.Config.User, user)
		}
	}
	for _, ref := range []string{
		gcr + "test-image-latest:latest", gcr + "test-image-tag:test", gcr + "test-image-tag:all",
		gcr + "test-image-1:latest", gcr + "test-image-2:latest", gcr + "test-image-3:latest",
		gcr + "test-image-tags:1", gcr + "test-image-tags:2", gcr + "test-image-tags:3",
		gcr + "hostnet-nginx-" + runtime.GOARCH + ":latest", "k8s.gcr.io/pause:3.9",
	} {
		pull(ref)
	}
	same := func(a, b string, want bool) {
		if (ids[a] == ids[b]) != want {
			t.Errorf("%s and %s: ids %s and %s, want same=%v", a, b, ids[a], ids[b], want)
		}
	}
	same(gcr+"test-image-tags:1", gcr+"test-image-tags:3", true)
	same(gcr+"test-image-tag:test", gcr+"test-image-tag:all", true)
	same("registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9", true)
	same(gcr+"test-image-1:latest", gcr+"test-image-2:latest", false)
	same(gcr+"test-image-latest:latest", gcr+"test-image-tag:test", false)

	// The default image: real programs, one hard-linked busybox whose shell execs them.
	bb := pull("registry.k8s.io/e2e-test-images/busybox:1.29-2")
	dirs, err := store.LayerDirs(bb)
	if err != nil || len(dirs) != 1 {
		t.Fatalf("busybox layers %v, %v", dirs, err)
	}
	var st1, st2 unix.Stat_t
	if err := unix.Lstat(filepath.Join(dirs[0], "bin/ls"), &st1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(dirs[0], "bin/busybox"), &st2); err != nil {
		t.Fatal(err)
	}
	if st1.Ino != st2.Ino || st1.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Error("bin/ls is not a hard link of bin/busybox")
	}
	for cmd, want := range map[string]string{
		"echo -n hello":                "hello",
		"id -u www-data":               "33\n",
		"pgrep --version | head -c 5":  "pgrep",
		"ipcs -m | head -c 0; echo ok": "ok\n",
		"ls /usr/bin":                  "ipcs\npgrep\n",
	} {
		if got := chroot(t, dirs[0], "/bin/sh", "-c", cmd); got != want {
			t.Errorf("sh -c %q = %q, want %q", cmd, got, want)
		}
	}

	// nginx's configuration is valid in its image; nnp is setuid root.
	ngx := pull("registry.k8s.io/e2e-test-images/nginx:1.14-2")
	root := mountImage(t, store, ngx)
	if got := chroot(t, root, "/usr/sbin/nginx", "-t", "-q"); got != "" {
		t.Errorf("nginx -t: %q", got)
	}
	if conf, err := os.ReadFile(filepath.Join(root, "etc/nginx/nginx.conf")); err != nil || !strings.Contains(string(conf), "listen 80 ") {
		t.Errorf("nginx.conf: %v\n%s", err, conf)
	}
	nnp := pull("registry.k8s.io/e2e-test-images/nonewprivs:1.3")
	root = mountImage(t, store, nnp)
	fi, err := os.Stat(filepath.Join(root, "usr/local/bin/nnp"))
	if err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("nnp: %v, mode %v", err, fi.Mode())
	}
	if got := chroot(t, root, "/usr/local/bin/nnp"); got != "Effective uid: 0\n" {
		t.Errorf("nnp printed %q", got)
	}
	hd := pull("registry.k8s.io/e2e-test-images/httpd:2.4.39-4")
	if !slices.Equal(hd.Config.Cmd, []string{"httpd-foreground"}) {
		t.Errorf("httpd cmd %v", hd.Config.Cmd)
	}
	root = mountImage(t, store, pull(gcr+"test-image-predefined-group:latest"))
	if g, err := os.ReadFile(filepath.Join(root, "etc/group")); err != nil || !strings.Contains(string(g), "\ngroup-defined-in-image:x:50000:default-user\n") {
		t.Errorf("/etc/group: %v\n%s", err, g)
	}
}

// chroot runs argv in dir as root and returns its output; errors fail the test.
func chroot(t *testing.T, dir string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir}
	cmd.Dir = "/"
	cmd.Env = []string{imagePath}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%v in %s: %v: %s", argv, dir, err, out)
	}
	return string(out)
}

// mountImage mounts img's layers as an overlay with a writable layer of its own and
// returns the directory.
func mountImage(t *testing.T, store *image.Store, img image.Image) string {
	t.Helper()
	dirs, err := store.LayerDirs(img)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(dirs) // overlayfs lists the top layer first
	tmp := t.TempDir()
	target, upper, work := filepath.Join(tmp, "root"), filepath.Join(tmp, "upper"), filepath.Join(tmp, "work")
	for _, d := range []string{target, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + strings.Join(dirs, ":") + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Error(err)
		}
	})
	return target
}
