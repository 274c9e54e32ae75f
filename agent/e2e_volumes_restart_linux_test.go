package agent_test

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// TestE2EVolumesSurviveKill9: bin/nodekit-kubelet is killed with SIGKILL in
// the middle of setting up a pod's volumes (as soon as the first of its mounts
// appears) and while they are mounted. After each restart nothing is mounted
// twice and the running container is adopted untouched; a pod whose manifest
// went while the agent was down has its half-made volumes cleaned at start;
// deleting the pod unmounts everything.
func TestE2EVolumesSurviveKill9(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t)
	h := prepare(t, "nkav-")
	d := newDaemons(t, h, "--object-manifest-path", h.objects)
	h.writeObjects("web", webObjects)
	podsDir := filepath.Join(h.rootDir, "pods")
	manifest := filepath.Join(h.manifests, "vols.yaml")

	app := shell("app", `trap 'exit 0' TERM; `+idle)
	app.Resources.Limits = v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")}
	app.VolumeMounts = append(app.VolumeMounts,
		v1.VolumeMount{Name: "sec", MountPath: "/sec"},
		v1.VolumeMount{Name: "meta", MountPath: "/meta"},
		v1.VolumeMount{Name: "all", MountPath: "/all"},
		v1.VolumeMount{Name: "mem", MountPath: "/mem"},
		v1.VolumeMount{Name: "cfg", MountPath: "/cfg"},
		v1.VolumeMount{Name: "cfg", MountPath: "/index.html", SubPath: "index.html"},
	)
	pod := h.testPod("vols", app)
	pod.Spec.Volumes = append(pod.Spec.Volumes,
		v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "creds"}}},
		v1.Volume{Name: "meta", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
		v1.Volume{Name: "all", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
			{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "web"}}},
			{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}}}}}}},
		v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}},
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "web"}}}},
	)
	// Running: four tmpfs volumes (secret, downwardAPI, projected, Memory
	// emptyDir) and one subPath bind.
	const wantMounts = 5

	noDuplicates := func(when string) []string {
		t.Helper()
		mounts := leakcheck.Mounts(t, podsDir)
		sorted := slices.Sorted(slices.Values(mounts))
		if len(slices.Compact(sorted)) != len(mounts) {
			t.Errorf("%s: a volume is mounted twice: %v", when, mounts)
		}
		return sorted
	}
	// killAtFirstMount writes the manifest and kills the kubelet with SIGKILL
	// as soon as one of the pod's mounts appears; it returns how many there
	// were then.
	killAtFirstMount := func() int {
		t.Helper()
		found := make(chan int, 1)
		go func() {
			deadline := time.Now().Add(2 * time.Minute)
			for time.Now().Before(deadline) {
				if n := len(leakcheck.Mounts(t, podsDir)); n > 0 {
					d.kubelet.cmd.Process.Signal(syscall.SIGKILL)
					found <- n
					return
				}
			}
			found <- -1
		}()
		writeManifest(t, h.manifests, pod)
		n := <-found
		if n < 0 {
			t.Fatal("no mount of the pod appeared within 2 minutes")
		}
		if err := d.kubelet.signal(syscall.SIGKILL, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		return n
	}

	d.shim.start()
	d.kubelet.start()

	// A. Killed while setting up; the manifest goes while the agent is down:
	// at start, what was half made is unmounted and removed.
	n := killAtFirstMount()
	t.Logf("round A: killed with %d of %d mounts made", n, wantMounts)
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	d.kubelet.start()
	waitFor(t, "the half-made pod cleaned", time.Minute, func() bool {
		entries, _ := os.ReadDir(podsDir)
		return len(entries) == 0 && len(leakcheck.Mounts(t, podsDir)) == 0
	})

	// B. Killed while setting up; the manifest stays: the restarted agent
	// finishes the setup without mounting anything twice.
	n = killAtFirstMount()
	t.Logf("round B: killed with %d of %d mounts made", n, wantMounts)
	d.kubelet.start()
	var before *v1.Pod
	waitFor(t, "the pod running after the restart", 2*time.Minute, func() bool {
		before = findPod(localPods(h.rootDir), "vols")
		return before != nil && running(before)
	})
	mounted := noDuplicates("after a kill during setup")
	if len(mounted) != wantMounts {
		t.Errorf("mounts %v, want %d", mounted, wantMounts)
	}

	// C. Killed while everything is mounted: the restarted agent adopts the
	// pod, its container untouched, its mounts the same.
	if err := d.kubelet.signal(syscall.SIGKILL, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	d.kubelet.start()
	var after *v1.Pod
	waitFor(t, "the pod running after the second restart", 2*time.Minute, func() bool {
		after = findPod(localPods(h.rootDir), "vols")
		return after != nil && running(after)
	})
	// Let a few syncs pass (each sets the volumes up again).
	waitFor(t, "the node's pod status to settle", time.Minute, func() bool { return ready(findPod(localPods(h.rootDir), "vols")) })
	if again := noDuplicates("after a kill while mounted"); !slices.Equal(again, mounted) {
		t.Errorf("mounts changed across the restart:\nbefore %v\nafter  %v", mounted, again)
	}
	b, a := containerStatus(before, "app"), containerStatus(after, "app")
	if a == nil || b == nil || a.ContainerID != b.ContainerID || a.RestartCount != 0 {
		t.Errorf("container before %+v\nafter %+v: want it adopted", b, a)
	}

	// Deleting the pod unmounts everything.
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod's volumes unmounted and removed", time.Minute, func() bool {
		entries, _ := os.ReadDir(podsDir)
		return len(entries) == 0 && len(leakcheck.Mounts(t, podsDir)) == 0
	})
}
