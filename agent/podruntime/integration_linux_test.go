package podruntime_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/agent/podruntime"
	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testshim"
	"github.com/nodekit-dev/nodekit/pleg"
)

const busybox = "nodekit.local/busybox:latest"

// startShim starts nodekit's CRI shim in this process, reached over a unix
// socket through k8s.io/cri-client as the agent reaches it. Pods use the host
// network.
func startShim(t *testing.T) *testshim.Shim {
	t.Helper()
	testenv.RequireRoot(t)
	base := testenv.TempDir(t, "nkpr-") // short: socket paths are limited
	return testshim.Start(t, testshim.Options{
		Dir:          base,
		CgroupParent: "/nodekit-podruntime-shim-" + filepath.Base(base),
		Images:       []string{"busybox"},
		Timeout:      10 * time.Second,
	})
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// TestIntegrationPodLifecycle runs a pod with an init container, a sidecar, an
// app container with a preStop hook and a crashing container on the real shim:
// start order, downward API env, termination messages (file and log
// fallback), a crash restart, graceful stop order, and cleanup.
func TestIntegrationPodLifecycle(t *testing.T) {
	s := startShim(t)
	var b [4]byte
	rand.Read(b[:])
	cgroupRoot := "/nodekit-podruntime-it-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { leakcheck.RemoveCgroups(t, cgroupRoot) })
	root, logs := filepath.Join(s.Dir, "kubelet"), filepath.Join(s.Dir, "pods-logs")
	m, err := podruntime.New(podruntime.Options{
		Runtime: s.Runtime, Images: s.Images, RuntimeName: "nodekit",
		RootDir: root, PodLogsDir: logs, CgroupRoot: cgroupRoot,
		NodeName: "node-it", HostIPs: []string{"127.0.0.1"},
	})
	if err != nil {
		t.Fatal(err)
	}

	grace := int64(10)
	always := v1.ContainerRestartPolicyAlways
	loop := func(name string) string {
		return "echo " + name + " >> /shared/order; trap 'echo " + name + "-term >> /shared/order; exit 0' TERM; while true; do sleep 0.1; done"
	}
	field := func(p string) *v1.EnvVarSource {
		return &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: p}}
	}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "life", Namespace: "default", UID: types.UID("it-" + hex.EncodeToString(b[:]))},
		Spec: v1.PodSpec{
			HostNetwork: true, RestartPolicy: v1.RestartPolicyAlways, TerminationGracePeriodSeconds: &grace,
			Volumes: []v1.Volume{{Name: "shared", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}},
			InitContainers: []v1.Container{
				{
					Name: "init", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
					Command: sh(`echo "$POD_NAME $POD_NS $CPU_M $NODE $GREETING" > /dev/termination-log; echo init >> /shared/order`),
					Env: []v1.EnvVar{
						{Name: "POD_NAME", ValueFrom: field("metadata.name")},
						{Name: "POD_NS", ValueFrom: field("metadata.namespace")},
						{Name: "NODE", ValueFrom: field("spec.nodeName")},
						{Name: "CPU_M", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{
							Resource: "limits.cpu", Divisor: resource.MustParse("1m")}}},
						{Name: "GREETING", Value: "hi-$(POD_NAME)"},
					},
					Resources:              v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m")}},
					TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: v1.TerminationMessageReadFile,
					VolumeMounts: []v1.VolumeMount{{Name: "shared", MountPath: "/shared"}},
				},
				{
					Name: "sidecar", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, RestartPolicy: &always,
					Command:      sh(loop("sidecar")),
					VolumeMounts: []v1.VolumeMount{{Name: "shared", MountPath: "/shared"}},
				},
			},
			Containers: []v1.Container{
				{
					Name: "app", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
					Command:      sh(loop("app")),
					VolumeMounts: []v1.VolumeMount{{Name: "shared", MountPath: "/shared"}},
					Lifecycle: &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{
						Command: sh("echo prestop >> /shared/order")}}},
				},
				{
					Name: "crash", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
					Command:                sh("echo boom; exit 3"),
					TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: v1.TerminationMessageFallbackToLogsOnError,
				},
			},
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if rs, err := pleg.Inspect(c, s.Runtime, pod.UID); err == nil {
			zero := int64(0)
			_ = m.KillPod(c, pod, rs, &zero) // best effort: RemovePod stops what is left
		}
		if err := m.RemovePod(c, pod.UID); err != nil {
			t.Errorf("remove the pod: %v", err)
		}
	})

	latest := func(rs *pleg.PodStatus, name string) *runtimeapi.ContainerStatus {
		for _, c := range rs.ContainerStatuses {
			if c.GetMetadata().GetName() == name {
				return c
			}
		}
		return nil
	}
	var rs *pleg.PodStatus
	deadline := time.Now().Add(90 * time.Second)
	for {
		if rs, err = pleg.Inspect(ctx, s.Runtime, pod.UID); err != nil {
			t.Fatal(err)
		}
		app, crash := latest(rs, "app"), latest(rs, "crash")
		if app.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING && crash != nil && crash.GetMetadata().GetAttempt() >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod did not come up: %d containers", len(rs.ContainerStatuses))
		}
		res := m.SyncPod(ctx, pod, rs, nil)
		if res.Err != nil && res.Reason != "CrashLoopBackOff" {
			t.Fatalf("SyncPod: %v", res.Err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	order := filepath.Join(root, "pods", string(pod.UID), "volumes", "kubernetes.io~empty-dir", "shared", "order")
	data, _ := os.ReadFile(order)
	if got := strings.Fields(string(data)); len(got) < 3 || got[0] != "init" || got[1] != "sidecar" || got[2] != "app" {
		t.Errorf("start order %q, want init, sidecar, app", got)
	}
	if msg := m.TerminationMessage(latest(rs, "init")); msg != "life default 500 node-it hi-life\n" {
		t.Errorf("init termination message (downward API env) %q", msg)
	}
	var crashed *runtimeapi.ContainerStatus
	for _, c := range rs.ContainerStatuses {
		if c.GetMetadata().GetName() == "crash" && c.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			crashed = c
			break
		}
	}
	if crashed == nil || crashed.GetExitCode() != 3 {
		t.Fatalf("crashed container %v", crashed)
	}
	if msg := m.TerminationMessage(crashed); msg != "boom\n" {
		t.Errorf("crash termination message from the log %q", msg)
	}

	parent := podruntime.CgroupParent(podruntime.CgroupDriverCgroupfs, cgroupRoot, pod)
	if !strings.HasSuffix(parent, "/kubepods/burstable/pod"+string(pod.UID)) {
		t.Errorf("cgroup parent %s", parent)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", parent)); err != nil {
		t.Errorf("pod cgroup: %v", err)
	}

	// Stop: preStop before the app's SIGTERM, the sidecar after the app.
	if err := m.KillPod(ctx, pod, rs, nil); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(order)
	got := strings.Fields(string(data))
	idx := func(s string) int {
		for i, g := range got {
			if g == s {
				return i
			}
		}
		return -1
	}
	if p, a, sc := idx("prestop"), idx("app-term"), idx("sidecar-term"); p < 0 || a < 0 || sc < 0 || !(p < a && a < sc) {
		t.Errorf("stop order %q, want prestop, app-term, sidecar-term", got)
	}
	rs, _ = pleg.Inspect(ctx, s.Runtime, pod.UID)
	for _, c := range rs.ContainerStatuses {
		if c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container %s still running after KillPod", c.GetMetadata().GetName())
		}
	}

	if err := m.RemovePod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	rs, _ = pleg.Inspect(ctx, s.Runtime, pod.UID)
	if len(rs.ContainerStatuses)+len(rs.SandboxStatuses) != 0 {
		t.Errorf("left in the runtime: %d containers, %d sandboxes", len(rs.ContainerStatuses), len(rs.SandboxStatuses))
	}
	for _, p := range []string{filepath.Join(root, "pods", string(pod.UID)), podruntime.PodLogsDir(logs, "default", "life", pod.UID)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left (%v)", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", parent)); !os.IsNotExist(err) {
		t.Errorf("pod cgroup %s left (%v)", parent, err)
	}
}
