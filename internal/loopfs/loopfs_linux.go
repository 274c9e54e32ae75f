package loopfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Mount makes an ext4 filesystem of sizeMiB (no blocks reserved for root, so a
// full disk is full for root too) and mounts it on a new directory, which it
// returns. Its cleanup, which runs after those the test registers later,
// unmounts it and checks that the loop device went with it.
func Mount(t testing.TB, sizeMiB int) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nkdisk-")
	if err != nil {
		t.Fatal(err)
	}
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "m")
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Mkdir(mnt, 0o711); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("truncate", "-s", strconv.Itoa(sizeMiB)+"M", img)
	run("mkfs.ext4", "-q", "-F", "-m", "0", img)
	run("mount", "-o", "loop", img, mnt)
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount the test's filesystem: %v", err)
			if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
				t.Errorf("detach it: %v", err)
			}
		}
		// The kernel detaches an autoclear loop device in the background once the
		// filesystem is released: wait for it.
		attached := func() []byte {
			out, _ := exec.Command("losetup", "-j", img).CombinedOutput()
			return bytes.TrimSpace(out)
		}
		for deadline := time.Now().Add(30 * time.Second); len(attached()) > 0 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		if out := attached(); len(out) > 0 {
			t.Errorf("loop device left: %s", out)
			for _, f := range strings.Fields(string(out)) {
				if dev, ok := strings.CutSuffix(f, ":"); ok && strings.HasPrefix(dev, "/dev/loop") {
					if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
						t.Errorf("losetup -d %s: %v\n%s", dev, err, out)
					}
				}
			}
		}
	})
	return mnt
}

// FreeMiB is what statfs says is available on path's filesystem, in MiB.
func FreeMiB(t testing.TB, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize >> 20
}

// Fill takes every free block of the filesystem holding dir, and every free
// inode too, with files under dir/.filler, until writes fail with ENOSPC. The
// returned function frees it all again (the test's cleanup does too).
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	filler := filepath.Join(dir, ".filler")
	free = func() {
		if err := os.RemoveAll(filler); err != nil {
			t.Errorf("free the test's filesystem: %v", err)
		}
	}
	t.Cleanup(free)
	if err := os.Mkdir(filler, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(filler, "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	// Inodes first: empty files until none is left. (Filled after the blocks,
	// the inodes would stop at the first directory block the entries need,
	// leaving most inodes free: a file could then still be made in any
	// directory with room in its last block.)
	for i := 0; ; i++ {
		g, err := os.Create(filepath.Join(filler, fmt.Sprintf("i%d", i)))
		if err != nil {
			if errors.Is(err, unix.ENOSPC) {
				break
			}
			f.Close()
			t.Fatalf("fill %s: %v", dir, err)
		}
		g.Close()
		if i > 1<<20 {
			t.Fatalf("fill %s: more than a million inodes", dir)
		}
	}
	// Blocks: one big file (its inode made before the others), written until
	// the file system refuses.
	buf := make([]byte, 1<<20)
	for {
		_, err := f.Write(buf)
		if errors.Is(err, unix.ENOSPC) {
			break
		}
		if err != nil {
			f.Close()
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
	// What a full block left in the buffer cache, and the last partial block.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	if err := f.Close(); err != nil && !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("fill %s: %v", dir, err)
	}
	return free
}
