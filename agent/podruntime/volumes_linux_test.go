package podruntime

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/cgroupmount"
	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/volumes"
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
	dir := filepath.Join(e.root, "pods", string(pod.UID), "volumes", volumes.EmptyDirPlugin, "scratch")
	t.Cleanup(func() { leakcheck.NoMounts(t, filepath.Join(e.root, "pods")) })

	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	if mounts := leakcheck.Mounts(t, filepath.Dir(dir)); len(mounts) != 1 || mounts[0] != dir {
		t.Fatalf("mounts %v, want a tmpfs on %s", mounts, dir)
	}
	// A second sync does not stack another mount.
	e.sync(pod)
	if mounts := leakcheck.Mounts(t, filepath.Dir(dir)); len(mounts) != 1 {
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
	if mounts := leakcheck.Mounts(t, filepath.Join(e.root, "pods")); len(mounts) != 0 {
		t.Errorf("mounts left: %v", mounts)
	}
	if _, err := os.Stat(filepath.Join(e.root, "pods", string(pod.UID))); !os.IsNotExist(err) {
		t.Errorf("pod directory left: %v", err)
	}
}

// TestSubPathExpr expands a subPathExpr from the container's environment and
// hands the runtime a bind of it under volume-subpaths, which RemovePod
// unmounts.
func TestSubPathExpr(t *testing.T) {
	testenv.RequireRoot(t)
	e := newEnv(t)
	hostDir := t.TempDir()
	pod := newPod("p", "app")
	pod.Spec.Volumes = []v1.Volume{{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: hostDir}}}}
	c := &pod.Spec.Containers[0]
	c.Env = []v1.EnvVar{{Name: "SUB", Value: "logs"}}
	c.VolumeMounts = []v1.VolumeMount{{Name: "host", MountPath: "/host", ReadOnly: true, SubPathExpr: "$(SUB)"}}
	t.Cleanup(func() { leakcheck.NoMounts(t, filepath.Join(e.root, "pods")) })
	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	cfg := e.rt.configs[e.rt.containerIDs("app")[0]]
	var m *runtimeapi.Mount
	for _, x := range cfg.Mounts {
		if x.ContainerPath == "/host" {
			m = x
		}
	}
	want := filepath.Join(e.root, "pods", string(pod.UID), "volume-subpaths", "host", "app", "0")
	if m == nil || m.HostPath != want || !m.Readonly {
		t.Fatalf("/host mount %v, want %s read-only", m, want)
	}
	bound, err1 := os.Stat(want)
	logs, err2 := os.Stat(filepath.Join(hostDir, "logs"))
	if err1 != nil || err2 != nil || !os.SameFile(bound, logs) {
		t.Errorf("%s is not a bind of %s/logs (%v, %v)", want, hostDir, err1, err2)
	}
	if err := e.m.RemovePod(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if mounts := leakcheck.Mounts(t, filepath.Join(e.root, "pods")); len(mounts) != 0 {
		t.Errorf("mounts left: %v", mounts)
	}
}

// TestRemoveCgroup creates a pod cgroup with a child in every hierarchy and
// checks RemovePod removes them.
func TestRemoveCgroup(t *testing.T) {
	testenv.RequireRoot(t)
	mounts, err := cgroupmount.Points()
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
