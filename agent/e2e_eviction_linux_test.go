package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"

	"github.com/nodekit-dev/nodekit/agent/podsource"
	"github.com/nodekit-dev/nodekit/agent/stats"
)

// nodeMemoryAvailable is memory.available as the agent computes it: capacity
// minus the root cgroup's working set.
func nodeMemoryAvailable(t *testing.T) int64 {
	t.Helper()
	ns, err := stats.NewNode(stats.NodeOptions{NodeName: nodeName, FsPath: "/"}).Stats()
	if err != nil || ns.Memory == nil || ns.Memory.AvailableBytes == nil {
		t.Fatalf("node memory stats: %v", err)
	}
	return int64(*ns.Memory.AvailableBytes)
}

// hogScript allocates memory in 64 MiB steps (about 320 MiB a second) and
// stops by itself at limitMiB, so a failing test cannot take the node down.
func hogScript(limitMiB int) string {
	return fmt.Sprintf(`busybox awk 'BEGIN { s = sprintf("%%1048576s", ""); for (i = 0; i < %d; i++) { a[i] = s i; if (i %% 64 == 63) system("sleep 0.2") }; while (1) system("sleep 1") }'`, limitMiB)
}

func codePod(name string, containers ...v1.Container) *v1.Pod {
	grace := int64(5)
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "test"},
		Spec: v1.PodSpec{Containers: containers, TerminationGracePeriodSeconds: &grace}}
}

// waitEvicted waits for pod name to be evicted for resource (Failed, Evicted,
// the kubelet's message), watching whether the node's pressure condition turned
// True meanwhile (or still is).
func waitEvicted(t *testing.T, h *harness, name string, pressure v1.NodeConditionType, resource string) (*v1.Pod, bool) {
	t.Helper()
	saw := false
	p := h.waitPod(name, "evicted", 3*time.Minute, func(p *v1.Pod) bool {
		if !saw && nodeCondition(t, h, pressure).Status == v1.ConditionTrue {
			saw = true
		}
		return p.Status.Phase == v1.PodFailed
	})
	if p.Status.Reason != "Evicted" || !strings.Contains(p.Status.Message, "The node was low on resource: "+resource) {
		t.Errorf("%s status: reason %q message %q", name, p.Status.Reason, p.Status.Message)
	}
	if nodeCondition(t, h, pressure).Status == v1.ConditionTrue {
		saw = true
	}
	return p, saw
}

func nodeCondition(t *testing.T, h *harness, typ v1.NodeConditionType) v1.NodeCondition {
	t.Helper()
	n, err := h.agent.Node(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range n.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	t.Fatalf("node has no %s condition: %v", typ, n.Status.Conditions)
	return v1.NodeCondition{}
}

// A BestEffort pod allocating memory without bound beside a Guaranteed pod,
// under a memory.available threshold set 1.5 GiB below what the node has free
// (the hog stops by itself at 2.5 GiB):
// the hog is evicted (Failed, Evicted, DisruptionTarget), the Guaranteed pod
// keeps running, MemoryPressure turns True and back to False after the
// transition period. The pods come from code: static pods are critical and never
// evicted, as upstream. Not parallel: it measures the node's memory.
func TestE2EMemoryEviction(t *testing.T) {
	avail := nodeMemoryAvailable(t)
	// The margin leaves room for what other tests running at the same time
	// (other packages) take, so that the pressure ends once the hog is gone.
	const margin = 1536 << 20
	if avail < 3*margin {
		t.Fatalf("the node has %d MiB available; this test needs at least 4.5 GiB", avail>>20)
	}
	threshold := fmt.Sprintf("%dMi", (avail-margin)>>20)
	pods, err := podsource.NewPods(podsource.PodsOptions{NodeName: nodeName})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{sources: []podsource.Source{pods}, config: func(k *kubeletconfig.KubeletConfiguration) {
		k.EvictionHard = map[string]string{"memory.available": threshold}
		k.EvictionPressureTransitionPeriod = metav1.Duration{Duration: 5 * time.Second}
	}})
	t.Logf("memory.available %d MiB, hard threshold %s", avail>>20, threshold)

	guaranteed := codePod("steady", withResources(shell("main", idle), "cpu=100m,memory=32Mi", "cpu=100m,memory=32Mi"))
	guaranteed.Spec.Containers[0].VolumeMounts = nil
	if _, err := pods.Add(guaranteed); err != nil {
		t.Fatal(err)
	}
	h.waitPod("steady", "running", time.Minute, running)

	hog := codePod("hog", v1.Container{Name: "hog", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
		Command: []string{"sh", "-c", hogScript(2560)}})
	if _, err := pods.Add(hog); err != nil {
		t.Fatal(err)
	}
	evicted, sawPressure := waitEvicted(t, h, "hog", v1.NodeMemoryPressure, "memory")
	dt := false
	for _, c := range evicted.Status.Conditions {
		if c.Type == v1.DisruptionTarget && c.Status == v1.ConditionTrue && c.Reason == "TerminationByKubelet" {
			dt = true
		}
	}
	if !dt {
		t.Errorf("hog has no DisruptionTarget condition: %v", evicted.Status.Conditions)
	}
	if c := nodeCondition(t, h, v1.NodeMemoryPressure); c.Status == v1.ConditionTrue {
		sawPressure = true
		if c.Reason != "KubeletHasInsufficientMemory" {
			t.Errorf("MemoryPressure reason %q", c.Reason)
		}
	}
	if !sawPressure {
		t.Error("MemoryPressure never turned True")
	}
	// The Guaranteed pod was not touched.
	steady := h.pod("steady")
	if steady.Status.Phase != v1.PodRunning || len(steady.Status.ContainerStatuses) != 1 || steady.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("the Guaranteed pod after the eviction: %s", describe(steady))
	}
	// Pressure ends once the transition period has passed without the threshold met.
	waitFor(t, "MemoryPressure back to False", 2*time.Minute, func() bool {
		c := nodeCondition(t, h, v1.NodeMemoryPressure)
		return c.Status == v1.ConditionFalse && c.Reason == "KubeletHasSufficientMemory"
	})
	if p := h.pod("steady"); p.Status.Phase != v1.PodRunning {
		t.Errorf("the Guaranteed pod at the end: %s", describe(p))
	}
}

// A fork bomb in a pod is held by the pod's pids limit (podPidsLimit): the pod
// cgroup never holds more processes than that, and the node keeps forking.
func TestE2EForkBombHeldByPidsLimit(t *testing.T) {
	t.Parallel()
	const limit = 64
	h := newHarness(t, harnessOptions{config: func(k *kubeletconfig.KubeletConfiguration) {
		pids := int64(limit)
		k.PodPidsLimit = &pids
	}})
	bomb := h.testPod("bomb", shell("main", `rec started; b() { b | b & }; b; `+idle))
	h.writeManifest(bomb)
	p := h.waitPod("bomb", "running", time.Minute, running)
	h.waitEvents("started")
	rel := filepath.Join(h.cgroupRoot, "kubepods/besteffort/pod"+string(p.UID))
	cg := filepath.Join("/sys/fs/cgroup/pids", rel)
	if got := mustCgroupFile(t, "pids", rel, "pids.max"); got != fmt.Sprint(limit) {
		t.Fatalf("pod pids.max = %s, want %d", got, limit)
	}
	// The bomb reaches the limit and its forks fail: the kernel counts the
	// failures in the cgroup of the forking task, the container's, below the pod's.
	waitFor(t, "the pod's pids limit to be hit", time.Minute, func() bool {
		failed := 0
		// The callback skips what cannot be read and never fails the walk.
		_ = filepath.WalkDir(cg, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == "pids.events" {
				data, _ := os.ReadFile(path)
				if n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(data), "max "))); err == nil {
					failed += n
				}
			}
			return nil
		})
		return failed > 0
	})
	for range 20 {
		if cur, _ := strconv.Atoi(mustCgroupFile(t, "pids", rel, "pids.current")); cur > limit {
			t.Fatalf("pids.current %d above the limit %d", cur, limit)
		}
	}
	// The node is fine: this process still forks.
	if out, err := exec.Command("true").CombinedOutput(); err != nil {
		t.Fatalf("the node cannot fork: %v %s", err, out)
	}
	h.removeManifest("bomb")
	waitFor(t, "the bomb's pod removed", 2*time.Minute, func() bool { return h.pod("bomb") == nil })
}
