package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// /etc files of the busybox image. www-data is a supplementary member of the
// nodekit group and nodekit of users, so runtimes resolving named users must
// also compute supplementary groups.
const (
	etcPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/sbin/nologin
www-data:x:33:33:www-data:/var/www:/sbin/nologin
nodekit:x:1000:1000:nodekit:/home/nodekit:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
`
	etcGroup = `root:x:0:
daemon:x:1:
www-data:x:33:
users:x:100:nodekit
nodekit:x:1000:www-data
nogroup:x:65534:
`
	etcNsswitch = `passwd: files
group: files
shadow: files
hosts: files dns
`
	indexHTML = `<!DOCTYPE html>
<html>
<head><title>nodekit web sample</title></head>
<body>
<h1>nodekit web sample</h1>
<p>Served by busybox httpd from the nodekit.local/web image.</p>
</body>
</html>
`
)

// busyboxLayer checks that bin is a static ELF binary and builds the busybox
// image's single layer: the binary, a relative symlink for every applet of
// `busybox --list-full`, the usual directories and a few /etc files. It
// returns the binary's architecture as a GOARCH name.
func busyboxLayer(ctx context.Context, bin string, mtime time.Time) (string, layer, error) {
	arch, err := staticELF(bin)
	if err != nil {
		return "", layer{}, fmt.Errorf("%w; install Debian's busybox-static package (apt-get install busybox-static) or pass -busybox PATH", err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", layer{}, fmt.Errorf("read busybox: %w", err)
	}
	out, err := exec.CommandContext(ctx, bin, "--list-full").Output()
	if err != nil {
		return "", layer{}, fmt.Errorf("%s --list-full: %w", bin, err)
	}
	applets, err := appletLinks(string(out))
	if err != nil {
		return "", layer{}, fmt.Errorf("%s --list-full: %w", bin, err)
	}

	entries := []entry{
		dir("bin", 0o755),
		dir("dev", 0o755),
		dir("etc", 0o755),
		dir("home", 0o755),
		{name: "home/nodekit", typ: tar.TypeDir, mode: 0o755, uid: 1000, gid: 1000},
		dir("proc", 0o555),
		dir("root", 0o700),
		dir("sbin", 0o755),
		dir("sys", 0o555),
		dir("tmp", 0o1777),
		dir("usr", 0o755),
		dir("usr/bin", 0o755),
		dir("usr/sbin", 0o755),
		dir("var", 0o755),
		dir("var/run", 0o755),
		file("bin/busybox", 0o755, data),
		file("etc/passwd", 0o644, []byte(etcPasswd)),
		file("etc/group", 0o644, []byte(etcGroup)),
		file("etc/nsswitch.conf", 0o644, []byte(etcNsswitch)),
	}
	for _, a := range applets {
		target, err := filepath.Rel(path.Dir(a), "bin/busybox")
		if err != nil {
			return "", layer{}, fmt.Errorf("applet %s: %w", a, err)
		}
		entries = append(entries, symlink(a, target))
	}
	l, err := newLayer(entries, mtime, "nodekit examples/images: busybox-static binary, applet symlinks, /etc/passwd, /etc/group, /etc/nsswitch.conf")
	if err != nil {
		return "", layer{}, fmt.Errorf("busybox layer: %w", err)
	}
	return arch, l, nil
}

// appletLinks parses `busybox --list-full` output into the sorted applet
// link paths to create. It leaves out bin/busybox (the binary itself) and
// linuxrc (an initrd entry point with no place in a container image), and
// only accepts links into the usual bin directories.
func appletLinks(list string) ([]string, error) {
	allowed := map[string]bool{"bin": true, "sbin": true, "usr/bin": true, "usr/sbin": true}
	seen := map[string]bool{}
	var links []string
	for line := range strings.Lines(list) {
		name := strings.TrimSpace(line)
		if name == "" || name == "bin/busybox" || name == "linuxrc" || seen[name] {
			continue
		}
		if !allowed[path.Dir(name)] || path.Clean(name) != name {
			return nil, fmt.Errorf("unexpected applet path %q", name)
		}
		seen[name] = true
		links = append(links, name)
	}
	if len(links) == 0 {
		return nil, errors.New("no applets listed")
	}
	return links, nil
}

// webLayer is the web image's second layer: the document root.
func webLayer(mtime time.Time) (layer, error) {
	entries := []entry{
		dir("www", 0o755),
		file("www/index.html", 0o644, []byte(indexHTML)),
		file("www/healthz", 0o644, []byte("ok\n")),
	}
	l, err := newLayer(entries, mtime, "nodekit examples/images: /www/index.html, /www/healthz")
	if err != nil {
		return layer{}, fmt.Errorf("web layer: %w", err)
	}
	return l, nil
}

//go:embed pause/pause.c
var pauseSource []byte

// pauseLayer compiles pause/pause.c into a static, stripped binary and builds
// the pause image's single layer holding it as /pause. The build is
// reproducible: no build ID, the temporary directory mapped away from any
// path gcc records, a fixed random seed and the C locale.
func pauseLayer(ctx context.Context, cc string, mtime time.Time) (string, layer, error) {
	ccPath, err := exec.LookPath(cc)
	if err != nil {
		return "", layer{}, fmt.Errorf("building pause needs a C compiler, %q not found (install Debian's gcc and libc6-dev, or pass -cc): %w", cc, err)
	}
	tmp, err := os.MkdirTemp("", "nodekit-pause-")
	if err != nil {
		return "", layer{}, fmt.Errorf("build pause: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "pause.c"), pauseSource, 0o644); err != nil {
		return "", layer{}, fmt.Errorf("build pause: %w", err)
	}
	cmd := exec.CommandContext(ctx, ccPath,
		"-std=c11", "-Wall", "-Wextra", "-Werror",
		"-static", "-Os", "-s", "-Wl,--build-id=none",
		"-ffile-prefix-map="+tmp+"=.", "-frandom-seed=pause",
		"-o", "pause", "pause.c")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", layer{}, fmt.Errorf("build pause with %s (static linking needs libc6-dev): %w\n%s", cc, err, bytes.TrimSpace(out))
	}
	bin := filepath.Join(tmp, "pause")
	arch, err := staticELF(bin)
	if err != nil {
		return "", layer{}, fmt.Errorf("build pause: %w", err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", layer{}, fmt.Errorf("build pause: %w", err)
	}
	l, err := newLayer([]entry{file("pause", 0o755, data)}, mtime, "nodekit examples/images: /pause built from examples/images/pause/pause.c")
	if err != nil {
		return "", layer{}, fmt.Errorf("pause layer: %w", err)
	}
	return arch, l, nil
}

// staticELF checks that the file at p is a statically linked ELF executable
// (no interpreter, no shared library dependencies) and returns its
// architecture as a GOARCH name.
func staticELF(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("%s is not a static ELF binary: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is not a static ELF binary: it is dynamically linked (has an ELF interpreter)", p)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return "", fmt.Errorf("%s: read dynamic section: %w", p, err)
	}
	if len(libs) > 0 {
		return "", fmt.Errorf("%s is not a static ELF binary: it needs %s", p, strings.Join(libs, ", "))
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("%s is not an executable (ELF type %s)", p, f.Type)
	}
	arch := goarch(f.Machine, f.ByteOrder == binary.LittleEndian)
	if arch == "" {
		return "", fmt.Errorf("%s: unsupported ELF machine %s", p, f.Machine)
	}
	return arch, nil
}

// goarch maps an ELF machine to the GOARCH name OCI platforms use.
func goarch(m elf.Machine, littleEndian bool) string {
	switch m {
	case elf.EM_X86_64:
		return "amd64"
	case elf.EM_386:
		return "386"
	case elf.EM_AARCH64:
		return "arm64"
	case elf.EM_ARM:
		return "arm"
	case elf.EM_RISCV:
		return "riscv64"
	case elf.EM_S390:
		return "s390x"
	case elf.EM_PPC64:
		if littleEndian {
			return "ppc64le"
		}
		return "ppc64"
	}
	return ""
}
