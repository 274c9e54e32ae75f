package volumes

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// rootManager is newManager for tests that mount: they need root, and check
// that nothing stays mounted.
func rootManager(t *testing.T, objs *fakeObjects) (*Manager, string) {
	t.Helper()
	testenv.RequireRoot(t)
	m, root := newManager(t, objs)
	t.Cleanup(func() { leakcheck.NoMounts(t, root) })
	return m, root
}

func fsType(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Type)
}

// TestMemoryBackedVolumes: secrets, downwardAPI and projected volumes and
// Memory emptyDirs are tmpfs mounts sized as upstream; a configMap is on disk;
// fsGroup owns the files (group read, setgid directories); a second SetUp (an
// agent restart included) mounts nothing twice; TearDown leaves nothing.
func TestMemoryBackedVolumes(t *testing.T) {
	objs := newFakeObjects()
	objs.setConfigMap("default", "web", map[string]string{"index.html": "hello"})
	objs.setSecret("default", "creds", map[string][]byte{"password": []byte("s3cret"), "user": []byte("admin")})
	m, root := rootManager(t, objs)
	ctx := context.Background()
	pod := testPod("u1",
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "web"}}}},
		v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr(int32(0o400))}}},
		v1.Volume{Name: "meta", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
		v1.Volume{Name: "all", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
			{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "web"}}},
			{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Items: []v1.KeyToPath{{Key: "user", Path: "auth/user"}}}},
			{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
		}}}},
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("4Mi"))}}},
		v1.Volume{Name: "disk", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
	)
	pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: ptr(int64(2345))}
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	for name, tmpfs := range map[string]bool{"cfg": false, "sec": true, "meta": true, "all": true, "scratch": true, "disk": false} {
		if got := fsType(t, vols[name].Path) == unix.TMPFS_MAGIC; got != tmpfs {
			t.Errorf("volume %s on tmpfs: %t, want %t", name, got, tmpfs)
		}
	}
	if got := readFile(t, filepath.Join(vols["sec"].Path, "password")); got != "s3cret" {
		t.Errorf("secret password = %q", got)
	}
	if got := readFile(t, filepath.Join(vols["all"].Path, "auth/user")); got != "admin" {
		t.Errorf("projected auth/user = %q", got)
	}
	if got := readFile(t, filepath.Join(vols["all"].Path, "index.html")); got != "hello" {
		t.Errorf("projected index.html = %q", got)
	}
	if got := readFile(t, filepath.Join(vols["all"].Path, "name")); got != "p" {
		t.Errorf("projected name = %q", got)
	}
	// fsGroup: secret 0400 becomes 0440 group 2345; directories setgid.
	fi, err := os.Stat(filepath.Join(vols["sec"].Path, "password"))
	if err != nil || fi.Mode().Perm() != 0o440 || fi.Sys().(*syscall.Stat_t).Gid != 2345 {
		t.Errorf("secret file mode %v gid %d (%v), want 0440 group 2345", fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid, err)
	}
	data, _ := os.Readlink(filepath.Join(vols["all"].Path, "..data"))
	if fi, err := os.Stat(filepath.Join(vols["all"].Path, data, "auth")); err != nil || fi.Mode()&os.ModeSetgid == 0 || fi.Sys().(*syscall.Stat_t).Gid != 2345 {
		t.Errorf("projected directory %v, want setgid group 2345", fi.Mode())
	}
	if fi, _ := os.Stat(vols["scratch"].Path); fi.Mode()&os.ModeSetgid == 0 || fi.Mode().Perm() != 0o777 || fi.Sys().(*syscall.Stat_t).Gid != 2345 {
		t.Errorf("emptyDir %v gid %d, want 0777 setgid group 2345", fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid)
	}
	// sizeLimit: the tmpfs refuses to grow beyond 4Mi.
	big := make([]byte, 5<<20)
	if err := os.WriteFile(filepath.Join(vols["scratch"].Path, "big"), big, 0o644); err == nil {
		t.Error("a 5 MiB file fit in a 4Mi Memory emptyDir")
	}
	mounts := leakcheck.Mounts(t, root)

	// Again, then from a new manager (an agent restart): no mount twice,
	// nothing rewritten.
	before, _ := os.Readlink(filepath.Join(vols["sec"].Path, "..data"))
	if _, err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	m2, err := New(m.o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if again := leakcheck.Mounts(t, root); len(again) != len(mounts) {
		t.Errorf("mounts after two more setups: %v, want %v", again, mounts)
	}
	if after, _ := os.Readlink(filepath.Join(vols["sec"].Path, "..data")); after != before {
		t.Errorf("an unchanged secret was rewritten (%s -> %s)", before, after)
	}
	if uids, err := m2.PodDirs(); err != nil || len(uids) != 1 || uids[0] != "u1" {
		t.Errorf("PodDirs = %v, %v", uids, err)
	}
	if err := m2.TearDown(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if left := leakcheck.Mounts(t, root); len(left) != 0 {
		t.Errorf("mounts after TearDown: %v", left)
	}
	if _, err := os.Stat(filepath.Join(root, "pods", "u1", "volumes")); !os.IsNotExist(err) {
		t.Errorf("volumes directory left: %v", err)
	}
}

// TestSubPathEscapes: a subPath must stay in its volume whatever a container
// does to it: a symlink out is refused at the check, and a symlink swapped in
// between the check and the bind (the CVE-2017-1002101 race) is refused by
// the component-wise open.
func TestSubPathEscapes(t *testing.T) {
	m, root := rootManager(t, nil)
	ctx := context.Background()
	pod := testPod("u1", v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}})
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.TearDown(ctx, pod.UID) })
	vol := vols["data"].Path
	mountOf := func(sub string) (Mount, error) {
		c := &v1.Container{Name: "app", VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data", SubPath: sub}}}
		ms, err := m.ContainerMounts(pod, c, vols, nil)
		if err != nil {
			return Mount{}, err
		}
		return ms[0], nil
	}

	// A symlink to / made by a container: refused.
	if err := os.Symlink("/", filepath.Join(vol, "escape")); err != nil {
		t.Fatal(err)
	}
	if _, err := mountOf("escape"); err == nil || !strings.Contains(err.Error(), "outside the volume") {
		t.Errorf("symlink to /: %v, want refused", err)
	}
	if _, err := mountOf("escape/etc"); err == nil {
		t.Error("a path through a symlink to / was accepted")
	}

	// The race: the directory checked is replaced by a symlink to / before
	// the open.
	if err := os.MkdirAll(filepath.Join(vol, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	afterCheck = func() {
		if err := os.Rename(filepath.Join(vol, "sub"), filepath.Join(vol, "sub.old")); err != nil {
			t.Error(err)
		}
		if err := os.Symlink("/", filepath.Join(vol, "sub")); err != nil {
			t.Error(err)
		}
	}
	_, err = mountOf("sub")
	afterCheck = nil
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlink swapped in after the check: %v, want refused", err)
	}
	for _, mp := range leakcheck.Mounts(t, root) {
		if strings.Contains(mp, "volume-subpaths") {
			t.Errorf("a bind was made: %s", mp)
		}
	}

	// A legitimate subPath is created when missing and bound.
	mnt, err := mountOf("logs/app")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(root, "pods", "u1", "volume-subpaths", "data", "app", "0")
	if mnt.HostPath != want {
		t.Errorf("host path %s, want %s", mnt.HostPath, want)
	}
	a, _ := os.Stat(mnt.HostPath)
	b, _ := os.Stat(filepath.Join(vol, "logs/app"))
	if a == nil || b == nil || !os.SameFile(a, b) || b.Mode().Perm() != 0o777 {
		t.Errorf("bind %v of %v, want the same 0777 directory", a, b)
	}
}

// TestConfigMapSubPathIsPinned: a subPath of a configMap volume binds the file
// as it was (upstream: subPath mounts do not receive updates), while the
// volume itself follows the update.
func TestConfigMapSubPathIsPinned(t *testing.T) {
	objs := newFakeObjects()
	objs.setConfigMap("default", "web", map[string]string{"conf": "v1"})
	m, _ := rootManager(t, objs)
	ctx := context.Background()
	pod := testPod("u1", v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "web"}}}})
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.TearDown(ctx, pod.UID) })
	c := &v1.Container{Name: "app", VolumeMounts: []v1.VolumeMount{{Name: "cfg", MountPath: "/etc/app.conf", SubPath: "conf"}}}
	ms, err := m.ContainerMounts(pod, c, vols, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ms[0].ReadOnly {
		t.Error("a configMap subPath mount is not read-only")
	}
	objs.setConfigMap("default", "web", map[string]string{"conf": "v2"})
	if _, err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(vols["cfg"].Path, "conf")); got != "v2" {
		t.Errorf("volume conf = %q, want v2", got)
	}
	if got := readFile(t, ms[0].HostPath); got != "v1" {
		t.Errorf("subPath bind = %q, want the pinned v1", got)
	}
}
