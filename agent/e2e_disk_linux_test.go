package agent_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"

	"github.com/nodekit-dev/nodekit/agent/podsource"
	"github.com/nodekit-dev/nodekit/internal/loopfs"
)

// importRandomImage makes an image of one incompressible layer of sizeMiB and
// imports it into the test's shim under ref.
func importRandomImage(t *testing.T, h *harness, ref string, sizeMiB int64) {
	t.Helper()
	img, err := random.Image(sizeMiB<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := h.shim.Server.Images().Import(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
}

func hasImage(t *testing.T, h *harness, ref string) bool {
	t.Helper()
	st, err := h.img.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: ref}, false)
	if err != nil {
		t.Fatal(err)
	}
	return st.GetImage() != nil
}

// The node's disk fills: the root dir and the runtime's images on a small
// filesystem of the test's own, a nodefs.available threshold 150 MiB below what
// it has free, a pod writing up to 500 MiB. The eviction manager first reclaims
// at the node level — image GC removes the unused image (never busybox, which
// the running pods use) — and, as the writer keeps writing, evicts it (the pod
// using the most disk), leaving the quiet pod running.
func TestE2EDiskPressure(t *testing.T) {
	mnt := loopfs.Mount(t, 1024)
	pods, err := podsource.NewPods(podsource.PodsOptions{NodeName: nodeName})
	if err != nil {
		t.Fatal(err)
	}
	var threshold string
	h := newHarness(t, harnessOptions{parent: mnt, sources: []podsource.Source{pods}, config: func(k *kubeletconfig.KubeletConfiguration) {
		k.EvictionHard = map[string]string{"nodefs.available": threshold}
		k.ImageMinimumGCAge = metav1.Duration{Duration: time.Second}
		k.EvictionPressureTransitionPeriod = metav1.Duration{Duration: 5 * time.Second}
	}, beforeAgent: func(h *harness) {
		importRandomImage(t, h, "nodekit.local/big:unused", 120)
		threshold = strconv.Itoa(int(loopfs.FreeMiB(t, mnt)-150)) + "Mi"
		t.Logf("free %d MiB on the test's filesystem, nodefs.available threshold %s", loopfs.FreeMiB(t, mnt), threshold)
	}})

	quiet := codePod("quiet", v1.Container{Name: "main", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"sh", "-c", idle}})
	writer := codePod("writer", v1.Container{Name: "main", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"sh", "-c",
		`i=0; while [ $i -lt 50 ]; do dd if=/dev/urandom of=/fill.$i bs=1M count=10 2>/dev/null; i=$((i+1)); sleep 0.2; done; ` + idle}})
	for _, p := range []*v1.Pod{quiet, writer} {
		added, err := pods.Add(p)
		if err != nil {
			t.Fatal(err)
		}
		p.UID = added.UID
	}
	h.waitPod("quiet", "running", time.Minute, running)
	_, sawPressure := waitEvicted(t, h, "writer", v1.NodeDiskPressure, "ephemeral-storage")
	if !sawPressure {
		t.Error("DiskPressure never turned True")
	}
	if hasImage(t, h, "nodekit.local/big:unused") {
		t.Error("the unused image was not removed before evicting")
	}
	if !hasImage(t, h, busybox) {
		t.Error("the image the running pods use was removed")
	}
	if p := h.pod("quiet"); p.Status.Phase != v1.PodRunning || p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("the quiet pod: %s", describe(p))
	}
	// Under disk pressure no pod is admitted (critical ones excepted).
	if nodeCondition(t, h, v1.NodeDiskPressure).Status == v1.ConditionTrue {
		late, err := pods.Add(codePod("late", v1.Container{Name: "main", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"true"}}))
		if err != nil {
			t.Fatal(err)
		}
		p := h.waitPod("late", "refused", time.Minute, func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
		if p.Status.Reason != "Evicted" || !strings.Contains(p.Status.Message, "DiskPressure") || len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil {
			t.Errorf("a pod added under disk pressure: %s", describe(p))
		}
		pods.Remove(late.UID)
	}
	// The evicted pod stays (Failed), but the container GC may remove its
	// containers, and with them what it wrote: the pressure ends.
	waitFor(t, "DiskPressure back to False", 2*time.Minute, func() bool {
		return nodeCondition(t, h, v1.NodeDiskPressure).Status == v1.ConditionFalse
	})
	if p := h.pod("quiet"); p.Status.Phase != v1.PodRunning {
		t.Errorf("the quiet pod at the end: %s", describe(p))
	}
}

// A pod writing beyond its emptyDir's sizeLimit is evicted (local storage
// eviction), whatever the node's free space.
func TestE2EEmptyDirSizeLimitEviction(t *testing.T) {
	t.Parallel()
	pods, err := podsource.NewPods(podsource.PodsOptions{NodeName: nodeName})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{sources: []podsource.Source{pods}, config: func(k *kubeletconfig.KubeletConfiguration) {
		k.EvictionHard = map[string]string{"memory.available": "1Mi"}
	}})
	limit := resource.MustParse("10Mi")
	p := codePod("scratcher", v1.Container{Name: "main", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
		Command:      []string{"sh", "-c", `dd if=/dev/zero of=/scratch/blob bs=1M count=30 && ` + idle},
		VolumeMounts: []v1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}})
	p.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: &limit}}}}
	if _, err := pods.Add(p); err != nil {
		t.Fatal(err)
	}
	got := h.waitPod("scratcher", "evicted", 2*time.Minute, func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	if got.Status.Reason != "Evicted" || !strings.Contains(got.Status.Message, `Usage of EmptyDir volume "scratch" exceeds the limit "10Mi"`) {
		t.Errorf("status: reason %q message %q", got.Status.Reason, got.Status.Message)
	}
}
