package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// debCache downloads Debian packages with `apt-get download` and unpacks them with
// `dpkg-deb -x`, once: dir/<package>/root is the unpacked package, dir/<package>/version
// its version. Delete dir/<package> to fetch the package again.
type debCache struct {
	dir string
}

// unpack returns the unpacked root of package pkg and its version.
func (c *debCache) unpack(ctx context.Context, pkg string) (root, version string, err error) {
	base := filepath.Join(c.dir, pkg)
	root = filepath.Join(base, "root")
	if v, err := os.ReadFile(filepath.Join(base, "version")); err == nil {
		if _, err := os.Stat(root); err == nil {
			return root, strings.TrimSpace(string(v)), nil
		}
	}
	if err := os.RemoveAll(base); err != nil {
		return "", "", err
	}
	dl := filepath.Join(base, "download")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return "", "", err
	}
	// As root apt-get downloads as the _apt user when it can write the directory;
	// it cannot here, so say so instead of warning about it.
	download := func() error {
		_, err := output(ctx, dl, "apt-get", "-o", "APT::Sandbox::User=root", "download", pkg)
		return err
	}
	if err := download(); err != nil {
		// A fresh machine may have no package lists yet: fetch them once and retry.
		if _, uerr := output(ctx, "", "apt-get", "update", "-qq"); uerr != nil {
			return "", "", fmt.Errorf("download Debian package %s: %w (apt-get update: %v)", pkg, err, uerr)
		}
		if err := download(); err != nil {
			return "", "", fmt.Errorf("download Debian package %s: %w", pkg, err)
		}
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != 1 {
		return "", "", fmt.Errorf("download Debian package %s: got %d .deb files in %s", pkg, len(debs), dl)
	}
	out, err := output(ctx, "", "dpkg-deb", "-f", debs[0], "Version")
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", debs[0], err)
	}
	version = strings.TrimSpace(out)
	tmp := root + ".tmp"
	if _, err := output(ctx, "", "dpkg-deb", "-x", debs[0], tmp); err != nil {
		return "", "", fmt.Errorf("unpack %s: %w", debs[0], err)
	}
	if err := os.Rename(tmp, root); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(base, "version"), []byte(version+"\n"), 0o644); err != nil {
		return "", "", err
	}
	return root, version, nil
}

// file returns the path of file rel (e.g. "bin/busybox") in package pkg.
func (c *debCache) file(ctx context.Context, pkg, rel string) (string, error) {
	root, _, err := c.unpack(ctx, pkg)
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, rel)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("package %s (Debian) has no %s", pkg, rel)
	} else if err != nil {
		return "", err
	}
	return p, nil
}

// output runs a command in dir and returns its standard output; errors carry its
// standard error.
func output(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
