package main

import (
	"archive/tar"
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Repository paths of the images critest v1.36.0 pulls (pkg/validate/consts.go,
// pkg/framework), without their registry: gcr.io for k8s-staging-cri-tools/,
// registry.k8s.io (and k8s.gcr.io for pause) for the others.
const (
	stagingRepo = "k8s-staging-cri-tools/"
	e2eRepo     = "e2e-test-images/"

	busyboxRef    = e2eRepo + "busybox:1.29-2"
	nginxRef      = e2eRepo + "nginx:1.14-2"
	httpdRef      = e2eRepo + "httpd:2.4.39-4"
	nonewprivsRef = e2eRepo + "nonewprivs:1.3"
	pauseRef      = "pause:3.9"
)

// upstreamRegistries are the registries critest names; the mirror configuration
// sends all of them to the local registry.
var upstreamRegistries = []string{"gcr.io", "registry.k8s.io", "k8s.gcr.io"}

// testImage is one image and the repository:tag paths it is pushed under.
type testImage struct {
	refs []string
	img  v1.Image
}

// buildOptions are the inputs of the image build.
type buildOptions struct {
	debs    *debCache
	pause   string    // OCI archive of the pause image (make images: _output/images/pause.tar)
	created time.Time // every timestamp of the images
	arch    string    // GOARCH
	scratch string    // a directory for unpacked archives, removed by the caller after the push
}

// sources records the versions of the Debian packages the images were built from.
type sources map[string]string

const imagePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// The /etc files of busybox's official image, which the e2e busybox image is.
const (
	busyboxPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`
	busyboxGroup = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`
	nsswitch = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"

	// images/image-predefined-group: adduser -u 1000 -D default-user, addgroup -g
	// 50000 group-defined-in-image, addgroup default-user group-defined-in-image.
	predefinedPasswdLine = "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"
	predefinedGroupLines = "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"

	nginxIndex = `<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body>
<h1>Welcome to nginx!</h1>
<p>nginx from Debian, in nodekit's stand-in for the critest web server image.</p>
</body>
</html>
`
)

// httpdForeground starts busybox's httpd in the foreground on port 80.
const httpdForeground = `#!/bin/sh
echo "httpd-foreground: busybox httpd serving /usr/local/apache2/htdocs on port 80" >&2
exec httpd -f -v -p 80 -h /usr/local/apache2/htdocs
`

//go:embed nonewprivs/nnp.c
var nnpSource []byte

// compileNNP builds nnp.c statically and stripped, reproducibly (no build id, fixed
// seed, no paths), in a temporary directory under scratch.
func compileNNP(ctx context.Context, scratch string) ([]byte, error) {
	dir, err := os.MkdirTemp(scratch, "nnp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "nnp.c"), nnpSource, 0o644); err != nil {
		return nil, err
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := output(ctx, dir, cc, "-static", "-Os", "-s", "-Wl,--build-id=none", "-frandom-seed=nnp",
		"-ffile-prefix-map="+dir+"=.", "-o", "nnp", "nnp.c"); err != nil {
		return nil, fmt.Errorf("%w (install gcc and libc6-dev)", err)
	}
	return os.ReadFile(filepath.Join(dir, "nnp"))
}

// nginxConf is the server configuration: master and one worker, the pid file where
// critest looks for it, logs on the container's stdout/stderr.
func nginxConf(port int) string {
	return fmt.Sprintf(`user www-data;
worker_processes 1;
pid /var/run/nginx.pid;
error_log stderr notice;

events {
	worker_connections 64;
}

http {
	default_type text/html;
	access_log /dev/stdout;
	server {
		listen %d default_server;
		root /usr/share/nginx/html;
		index index.html;
	}
}
`, port)
}

// tripletOf is the Debian multiarch directory name of a GOARCH.
func tripletOf(arch string) (string, error) {
	switch arch {
	case "amd64":
		return "x86_64-linux-gnu", nil
	case "arm64":
		return "aarch64-linux-gnu", nil
	}
	return "", fmt.Errorf("architecture %s is not supported by the critest image builder", arch)
}

// buildImages builds every image critest needs, in the order they are pushed.
func buildImages(ctx context.Context, o buildOptions) ([]testImage, sources, error) {
	triplet, err := tripletOf(o.arch)
	if err != nil {
		return nil, nil, err
	}
	src := sources{}
	base, err := baseLayer(ctx, o, triplet, src)
	if err != nil {
		return nil, nil, fmt.Errorf("busybox layer: %w", err)
	}
	baseCfg := v1.Config{Env: []string{imagePath}, Cmd: []string{"sh"}}
	var out []testImage
	add := func(img v1.Image, err error, refs ...string) error {
		if err != nil {
			return fmt.Errorf("image %s: %w", refs[0], err)
		}
		out = append(out, testImage{refs: refs, img: img})
		return nil
	}

	// The default test container image.
	img, err := o.image(baseCfg, base)
	if err := add(img, err, busyboxRef); err != nil {
		return nil, nil, err
	}

	// images/image-test: busybox plus an empty file named after the image.
	for _, t := range []struct {
		file string
		refs []string
	}{
		{"test-image-latest", []string{"test-image-latest:latest"}},
		{"test-image-tag", []string{"test-image-tag:test", "test-image-tag:all"}},
		{"test-image-digest", []string{"test-image-digest:latest"}},
		{"test-image-1", []string{"test-image-1:latest"}},
		{"test-image-2", []string{"test-image-2:latest"}},
		{"test-image-3", []string{"test-image-3:latest"}},
		{"same-image", []string{"test-image-tags:1", "test-image-tags:2", "test-image-tags:3"}},
	} {
		l, err := newLayer([]entry{fileEntry(t.file, 0o644, nil)}, o.created)
		if err != nil {
			return nil, nil, err
		}
		refs := make([]string, len(t.refs))
		for i, r := range t.refs {
			refs[i] = stagingRepo + r
		}
		img, err := o.image(baseCfg, base, l)
		if err := add(img, err, refs...); err != nil {
			return nil, nil, err
		}
	}

	// images/image-user: busybox with USER set (images/build: IMAGE_USERS).
	for _, u := range []struct{ name, user string }{
		{"test-image-user-uid", "1002"},
		{"test-image-user-username", "www-data"},
		{"test-image-user-uid-group", "1003:1004"},
		{"test-image-user-username-group", "www-data:1004"},
	} {
		cfg := baseCfg
		cfg.User = u.user
		img, err := o.image(cfg, base)
		if err := add(img, err, stagingRepo+u.name+":latest"); err != nil {
			return nil, nil, err
		}
	}

	// images/image-predefined-group: a user in a group defined only in /etc/group.
	pg, err := newLayer([]entry{
		fileEntry("etc/passwd", 0o644, []byte(busyboxPasswd+predefinedPasswdLine)),
		fileEntry("etc/group", 0o644, []byte(busyboxGroup+predefinedGroupLines)),
		dirEntry("home", 0o755),
		{name: "home/default-user", typ: tar.TypeDir, mode: 0o755, uid: 1000, gid: 1000},
	}, o.created)
	if err != nil {
		return nil, nil, err
	}
	pgCfg := baseCfg
	pgCfg.User = "1000"
	img, err = o.image(pgCfg, base, pg)
	if err := add(img, err, stagingRepo+"test-image-predefined-group:latest"); err != nil {
		return nil, nil, err
	}

	// The web servers: Debian's nginx on port 80 (e2e-test-images/nginx) and, for
	// host-network pods, on 12003 (images/hostnet-nginx).
	ngx, err := nginxLayer(ctx, o, triplet, base, src)
	if err != nil {
		return nil, nil, fmt.Errorf("nginx layer: %w", err)
	}
	ngxCfg := v1.Config{
		Env:          []string{imagePath},
		Cmd:          []string{"nginx", "-g", "daemon off;"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		StopSignal:   "SIGTERM",
	}
	for _, w := range []struct {
		port int
		ref  string
	}{
		{80, nginxRef},
		{12003, stagingRepo + "hostnet-nginx-" + o.arch + ":latest"},
	} {
		conf, err := newLayer([]entry{fileEntry("etc/nginx/nginx.conf", 0o644, []byte(nginxConf(w.port)))}, o.created)
		if err != nil {
			return nil, nil, err
		}
		cfg := ngxCfg
		cfg.ExposedPorts = map[string]struct{}{fmt.Sprintf("%d/tcp", w.port): {}}
		img, err := o.image(cfg, base, ngx, conf)
		if err := add(img, err, w.ref); err != nil {
			return nil, nil, err
		}
	}

	// httpd for the multi-container specs: serves port 80 and says "httpd" in its
	// log. busybox's httpd behind a start script, like the image's httpd-foreground.
	hd, err := newLayer([]entry{
		fileEntry("usr/local/bin/httpd-foreground", 0o755, []byte(httpdForeground)),
		fileEntry("usr/local/apache2/htdocs/index.html", 0o644, []byte("<html><body><h1>It works!</h1></body></html>\n")),
	}, o.created)
	if err != nil {
		return nil, nil, err
	}
	img, err = o.image(v1.Config{
		Env:          []string{imagePath},
		Cmd:          []string{"httpd-foreground"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		WorkingDir:   "/usr/local/apache2",
	}, base, hd)
	if err := add(img, err, httpdRef); err != nil {
		return nil, nil, err
	}

	// nonewprivs: a setuid-root program printing its effective uid.
	nnp, err := compileNNP(ctx, o.scratch)
	if err != nil {
		return nil, nil, fmt.Errorf("nonewprivs: %w", err)
	}
	nl, err := newLayer([]entry{fileEntry("usr/local/bin/nnp", 0o4755, nnp)}, o.created)
	if err != nil {
		return nil, nil, err
	}
	img, err = o.image(v1.Config{Env: []string{imagePath}, Cmd: []string{"/usr/local/bin/nnp"}}, base, nl)
	if err := add(img, err, nonewprivsRef); err != nil {
		return nil, nil, err
	}

	// The pause image, the same image under registry.k8s.io and k8s.gcr.io.
	pause, err := loadArchive(o.pause, o.scratch)
	if err := add(pause, err, pauseRef); err != nil {
		return nil, nil, fmt.Errorf("%w (run make images first)", err)
	}
	return out, src, nil
}

// image assembles an OCI image of layers with cfg, for linux/o.arch, every
// timestamp o.created.
func (o buildOptions) image(cfg v1.Config, layers ...*layer) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{Layer: l, MediaType: types.OCILayer, History: v1.History{
			Created:   v1.Time{Time: o.created},
			CreatedBy: "nodekit examples/critest",
		}}
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: o.created}
	cf.OS, cf.Architecture = "linux", o.arch
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// baseLayer is the busybox image's only layer: Debian's dynamically linked busybox
// (its shell runs every applet as a real program, so masking /bin/ls works), a hard
// link per applet in /bin as in busybox's official image, pgrep (procps) and ipcs
// (util-linux) from the host, the libraries they need, and busybox's /etc files.
func baseLayer(ctx context.Context, o buildOptions, triplet string, src sources) (*layer, error) {
	bb, err := o.debs.file(ctx, "busybox", "bin/busybox")
	if err != nil {
		return nil, err
	}
	_, src["busybox"], _ = o.debs.unpack(ctx, "busybox")
	data, err := os.ReadFile(bb)
	if err != nil {
		return nil, err
	}
	list, err := output(ctx, "", bb, "--list")
	if err != nil {
		return nil, err
	}
	entries := []entry{
		dirEntry("bin", 0o755),
		dirEntry("dev", 0o755),
		dirEntry("etc", 0o755),
		dirEntry("home", 0o755),
		dirEntry("proc", 0o555),
		dirEntry("root", 0o700),
		dirEntry("run", 0o755),
		dirEntry("sys", 0o555),
		dirEntry("tmp", 0o1777),
		dirEntry("usr/bin", 0o755),
		dirEntry("usr/sbin", 0o755),
		dirEntry("var/spool/mail", 0o755),
		dirEntry("var/www", 0o755),
		symlinkEntry("var/run", "../run"),
		fileEntry("bin/busybox", 0o755, data),
		fileEntry("etc/passwd", 0o644, []byte(busyboxPasswd)),
		fileEntry("etc/group", 0o644, []byte(busyboxGroup)),
		fileEntry("etc/nsswitch.conf", 0o644, []byte(nsswitch)),
	}
	applets := strings.Fields(list)
	slices.Sort(applets)
	for _, a := range applets {
		if a == "busybox" || a == "linuxrc" || strings.Contains(a, "/") {
			continue
		}
		entries = append(entries, hardlinkEntry("bin/"+a, "bin/busybox"))
	}
	var hostBins []string
	for _, b := range []struct{ name, pkg string }{{"pgrep", "procps"}, {"ipcs", "util-linux"}} {
		p := filepath.Join("/usr/bin", b.name)
		b2, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w (install Debian's %s package)", err, b.pkg)
		}
		entries = append(entries, fileEntry("usr/bin/"+b.name, 0o755, b2))
		hostBins = append(hostBins, p)
		v, err := output(ctx, "", "dpkg-query", "-W", "-f=${Version}", b.pkg)
		if err == nil {
			src[b.pkg+" (host)"] = v
		}
	}
	if entries, err = withLibraries(entries, triplet, append([]string{bb}, hostBins...)...); err != nil {
		return nil, err
	}
	return newLayer(entries, o.created)
}

// nginxLayer is Debian's nginx binary, the libraries it needs beyond the base
// layer's, its runtime directories and a welcome page.
func nginxLayer(ctx context.Context, o buildOptions, triplet string, base *layer, src sources) (*layer, error) {
	bin, err := o.debs.file(ctx, "nginx", "usr/sbin/nginx")
	if err != nil {
		return nil, err
	}
	_, src["nginx"], _ = o.debs.unpack(ctx, "nginx")
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	entries := []entry{
		fileEntry("usr/sbin/nginx", 0o755, data),
		dirEntry("etc/nginx", 0o755),
		dirEntry("var/lib/nginx", 0o755),
		dirEntry("var/log/nginx", 0o755),
		fileEntry("usr/share/nginx/html/index.html", 0o644, []byte(nginxIndex)),
	}
	inBase, err := layerNames(base)
	if err != nil {
		return nil, err
	}
	withLibs, err := withLibraries(entries, triplet, bin)
	if err != nil {
		return nil, err
	}
	entries = entries[:0:0]
	for _, e := range withLibs {
		if e.typ != tar.TypeReg || !inBase[e.name] {
			entries = append(entries, e)
		}
	}
	return newLayer(entries, o.created)
}

// layerNames lists the paths in a layer.
func layerNames(l *layer) (map[string]bool, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	names := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		names[path.Clean(h.Name)] = true
	}
}

// loadArchive reads the single image of an OCI image layout archive (tar), as
// `make images` writes them, keeping its manifest byte for byte. The layout is
// unpacked under scratch and read from there lazily.
func loadArchive(archive, scratch string) (v1.Image, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir, err := os.MkdirTemp(scratch, "archive-")
	if err != nil {
		return nil, err
	}
	if err := untar(f, dir); err != nil {
		return nil, fmt.Errorf("%s: %w", archive, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archive, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archive, err)
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("%s: want one image in index.json, found %d", archive, len(im.Manifests))
	}
	return idx.Image(im.Manifests[0].Digest)
}

// untar extracts the regular files and directories of an archive into dir.
func untar(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			if d := path.Dir(name); d != "." {
				if err := root.MkdirAll(d, 0o755); err != nil {
					return err
				}
			}
			var f *os.File
			if f, err = root.Create(name); err == nil {
				_, err = io.Copy(f, tr)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}
