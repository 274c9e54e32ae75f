//go:build linux

package layer

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nodekit-dev/nodekit/internal/testenv"
	"golang.org/x/sys/unix"
)

func getxattr(t *testing.T, p, attr string) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, attr, buf)
	if err != nil {
		t.Fatalf("getxattr %s %s: %v", p, attr, err)
	}
	return string(buf[:n])
}

func TestApplyWhiteoutsOwnershipXattrsAsRoot(t *testing.T) {
	testenv.RequireRoot(t)
	d, _, outside := sandbox(t)
	owned := file("owned", "x")
	owned.Uid, owned.Gid = 1234, 5678
	owned.Mode = 0o2755 // setgid survives the chown because chmod comes after it
	capFile := file("ping", "elf")
	capFile.PAXRecords = map[string]string{
		"SCHILY.xattr.user.origin": "tar",
		// VFS_CAP_REVISION_2, cap_net_raw effective+permitted; must survive the chown.
		"SCHILY.xattr.security.capability": string([]byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
	}
	capFile.Uid = 42
	ownedLink := symlink("link", "owned")
	ownedLink.Uid, ownedLink.Gid = 7, 8
	ownedDir := tar.Header{Name: "home/user/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000,
		PAXRecords: map[string]string{"SCHILY.xattr.user.dir": "yes"}}
	hdrs := []tar.Header{
		owned, capFile, ownedLink, ownedDir,
		file("gone/.wh.file", ""),
		file("opaque/.wh..wh..opq", ""),
		file("opaque/kept", "k"),
		file(".wh..wh.plnk", ""), // AUFS metadata: ignored
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
	}
	if _, err := Apply(context.Background(), d, tarOf(t, hdrs...), Options{AllowDevices: true}); err != nil {
		t.Fatal(err)
	}
	outside()

	for p, want := range map[string][2]uint32{"owned": {1234, 5678}, "ping": {42, 0}, "link": {7, 8}, "home/user": {1000, 1000}} {
		st := stat(t, filepath.Join(d, p))
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, want[0], want[1])
		}
	}
	if fi, _ := os.Stat(filepath.Join(d, "owned")); fi.Mode()&os.ModeSetgid == 0 {
		t.Errorf("owned lost setgid: %v", fi.Mode())
	}
	if got := getxattr(t, filepath.Join(d, "ping"), "user.origin"); got != "tar" {
		t.Errorf("user.origin = %q", got)
	}
	if got := getxattr(t, filepath.Join(d, "ping"), "security.capability"); got != capFile.PAXRecords["SCHILY.xattr.security.capability"] {
		t.Errorf("security.capability = %x", got)
	}
	if got := getxattr(t, filepath.Join(d, "home/user"), "user.dir"); got != "yes" {
		t.Errorf("home/user user.dir = %q", got)
	}
	wh := stat(t, filepath.Join(d, "gone/file"))
	if wh.Mode&unix.S_IFMT != unix.S_IFCHR || wh.Rdev != 0 {
		t.Errorf("whiteout gone/file: mode %o rdev %d, want char 0:0", wh.Mode, wh.Rdev)
	}
	if _, err := os.Lstat(filepath.Join(d, "gone/.wh.file")); err == nil {
		t.Error(".wh.file written verbatim")
	}
	if got := getxattr(t, filepath.Join(d, "opaque"), "trusted.overlay.opaque"); got != "y" {
		t.Errorf("opaque dir xattr = %q", got)
	}
	for _, p := range []string{"opaque/.wh..wh..opq", ".wh..wh.plnk", "plnk"} {
		if _, err := os.Lstat(filepath.Join(d, p)); err == nil {
			t.Errorf("%s written", p)
		}
	}
	dev := stat(t, filepath.Join(d, "dev/null"))
	if dev.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(dev.Rdev) != 1 || unix.Minor(dev.Rdev) != 3 {
		t.Errorf("dev/null: mode %o rdev %d:%d", dev.Mode, unix.Major(dev.Rdev), unix.Minor(dev.Rdev))
	}
}

// TestOverlayOfTwoLayers mounts a read-only overlay of two applied layers and checks the
// merged view: whiteouts hide lower files, an opaque directory hides the lower content.
func TestOverlayOfTwoLayers(t *testing.T) {
	testenv.RequireRoot(t)
	base := t.TempDir()
	lower, upper, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upper, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := Apply(ctx, lower, tarOf(t,
		file("a/keep", "1"), file("a/remove", "2"),
		file("b/old1", "3"), file("b/sub/old2", "4"),
		file("c/untouched", "5"), file("top", "6"),
	), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, upper, tarOf(t,
		dir("a/"), file("a/.wh.remove", ""),
		dir("b/"), file("b/.wh..wh..opq", ""), file("b/new", "7"),
		file(".wh.top", ""),
	), Options{}); err != nil {
		t.Fatal(err)
	}
	opts := "lowerdir=" + upper + ":" + lower
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount overlay %s: %v", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})
	list := func(p string) []string {
		ents, err := os.ReadDir(filepath.Join(merged, p))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	for p, want := range map[string][]string{
		".": {"a", "b", "c"},
		"a": {"keep"},
		"b": {"new"},
		"c": {"untouched"},
	} {
		if got := list(p); !slices.Equal(got, want) {
			t.Errorf("merged %s = %v, want %v", p, got, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(merged, "b/new")); err != nil || string(b) != "7" {
		t.Errorf("merged b/new = %q, %v", b, err)
	}
}
