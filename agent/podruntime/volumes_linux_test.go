package podruntime

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// TestMemoryEmptyDir mounts a real tmpfs for a Memory emptyDir and checks that
// RemovePod unmounts it before removing the pod directory.
func TestMemoryEmptyDir(t *testing.T) {
	testenv.RequireRoot(t)
	e := newEnv(t)
	pod := newPod("mem", "app")
	size := resource.MustParse("8Mi")
	pod.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{
		EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: &size}}}}
	dir := filepath.Join(e.root, "pods", string(pod.UID), "volumes", emptyDirPlugin, "scratch")
	t.Cleanup(func() { _ = unmountUnder(filepath.Join(e.root, "pods")) })

	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	if ok, err := isTmpfsMount(dir); err != nil || !ok {
		t.Fatalf("%s is not a tmpfs mount (%v)", dir, err)
	}
	// A second sync does not stack another mount.
	e.sync(pod)
	if mounts, _ := mountsUnder(dir); len(mounts) != 1 {
		t.Errorf("mounts on the volume: %v, want exactly one", mounts)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := e.m.KillPod(context.Background(), pod, inspect(e.rt, pod.UID), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.m.RemovePod(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if mounts, _ := mountsUnder(filepath.Join(e.root, "pods")); len(mounts) != 0 {
		t.Errorf("mounts left: %v", mounts)
	}
	if _, err := os.Stat(filepath.Join(e.root, "pods", string(pod.UID))); !os.IsNotExist(err) {
		t.Errorf("pod directory left: %v", err)
	}
}

// TestRemoveCgroup creates a pod cgroup with a child in every hierarchy and
// checks RemovePod removes them.
func TestRemoveCgroup(t *testing.T) {
	testenv.RequireRoot(t)
	mounts, err := cgroupMounts()
	if err != nil || len(mounts) == 0 {
		testenv.Skip(t, "no cgroup hierarchies mounted")
	}
	root := "/nodekit-podruntime-test-" + filepath.Base(t.TempDir())
	e := newEnv(t, func(o *Options) { o.CgroupRoot = root })
	pod := newPod("cg", "app")
	parent := CgroupParent(CgroupDriverCgroupfs, root, pod)
	var made []string
	for _, m := range mounts {
		p := filepath.Join(m, parent, "child")
		if err := os.MkdirAll(p, 0o755); err == nil {
			made = append(made, filepath.Join(m, parent))
		}
	}
	t.Cleanup(func() {
		for _, m := range mounts {
			_ = removeCgroupTree(filepath.Join(m, root))
		}
	})
	if len(made) == 0 {
		testenv.Skip(t, "cannot create cgroups here")
	}
	if err := e.m.RemovePod(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	for _, p := range made {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left (%v)", p, err)
		}
	}
}
