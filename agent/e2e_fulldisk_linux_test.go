package agent_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"

	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/loopfs"
)

// The agent's root directory (pods, volumes, hook markers) and the pod log
// directory on a small filesystem of the test's own, filled up. What needs to
// write fails with the kubelet's reason and a message naming the path; nothing
// running is lost (the running pod keeps its container and its output flowing,
// an exit while full keeps its exit code, a configMap edit leaves the old
// content whole); no temporary file is left; and everything catches up once
// space is freed.
func TestE2EFullDisk(t *testing.T) {
	t.Parallel()
	// Mounted first, so that it is unmounted after everything else is gone;
	// the mount check runs after the agent and the shim stopped.
	diskFS := loopfs.Mount(t, 48)
	t.Cleanup(func() { leakcheck.NoMounts(t, diskFS) })
	h := newHarness(t, harnessOptions{
		beforeAgent: func(h *harness) {
			h.rootDir = filepath.Join(diskFS, "root")
			h.podLogs = filepath.Join(diskFS, "logs")
		},
		// Volumes follow their objects at each sync of the pod, as the
		// kubelet's: sooner than the default minute.
		config: func(k *kubeletconfig.KubeletConfiguration) {
			k.SyncFrequency = metav1.Duration{Duration: 10 * time.Second}
		},
	})
	h.writeObjects("web", webObjects)

	// keep: output every 0.1 s (to its log, on the full disk) and a beat
	// counter in /host; a configMap and an emptyDir volume.
	keep := h.testPod("keep", shell("app", `trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo "beat $i"; echo $i > /host/keep-beat; sleep 0.1; done`))
	keep.Spec.Containers[0].VolumeMounts = append(keep.Spec.Containers[0].VolumeMounts,
		v1.VolumeMount{Name: "cfg", MountPath: "/cfg"}, v1.VolumeMount{Name: "scratch", MountPath: "/scratch"})
	keep.Spec.Volumes = append(keep.Spec.Volumes,
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "web"}}}},
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}})
	h.writeManifest(keep)
	// exiter: exits 5 when told to, once; runs idle after its restart.
	h.writeManifest(h.testPod("exiter", shell("app", `trap 'exit 0' TERM; if [ -e /host/exited ]; then `+idle+`; fi; `+
		`while [ ! -e /host/go ]; do sleep 0.05; done; touch /host/exited; exit 5`)))
	p := h.waitPod("keep", "running", 2*time.Minute, running)
	keepID := containerStatus(p, "app").ContainerID
	h.waitPod("exiter", "running", 2*time.Minute, running)
	if out, code := h.exec(p, "app", "cat", "/cfg/index.html"); code != 0 || out != "hello v1" {
		t.Fatalf("keep's configMap before the disk filled: %q (exit %d)", out, code)
	}

	free := loopfs.Fill(t, diskFS)
	const enospc = "no space left on device"

	// A new pod cannot have its directory: FailedMount naming the path.
	late := h.testPod("late", shell("app", `trap 'exit 0' TERM; `+idle))
	late.Spec.Containers[0].VolumeMounts = append(late.Spec.Containers[0].VolumeMounts, v1.VolumeMount{Name: "cfg", MountPath: "/cfg"})
	late.Spec.Volumes = append(late.Spec.Volumes,
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "web"}}}})
	h.writeManifest(late)
	h.waitPod("late", "FailedMount naming the full disk", 2*time.Minute, func(p *v1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "FailedMount" &&
			strings.Contains(cs.State.Waiting.Message, enospc) && strings.Contains(cs.State.Waiting.Message, diskFS)
	})

	// The exiter ends while the disk is full: its exit code reaches the
	// status, and its restart fails naming the path: the shim cannot create
	// the container's log (StartError, exit code 128, as containerd's), nor
	// the agent the file for its termination message (the kubelet runs the
	// container without one).
	exiterUID := h.pod("exiter").UID
	if err := os.WriteFile(filepath.Join(h.hostDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the exiter's exit code 5", 2*time.Minute, func() bool {
		for _, st := range h.events.instances(exiterUID, "app") {
			if st.State == runtimeapi.ContainerState_CONTAINER_EXITED && st.ExitCode == 5 {
				return true
			}
		}
		return false
	})
	p = h.waitPod("exiter", "the restart refused naming the path", 2*time.Minute, func(p *v1.Pod) bool {
		cs := containerStatus(p, "app")
		if cs == nil || cs.LastTerminationState.Terminated == nil {
			return false
		}
		msg := cs.LastTerminationState.Terminated.Message
		return cs.LastTerminationState.Terminated.ExitCode == 128 && strings.Contains(msg, enospc) && strings.Contains(msg, diskFS)
	})
	t.Logf("exiter while the disk is full: %s", containerStatus(p, "app").LastTerminationState.Terminated.Message)
	if !strings.Contains(h.logs.String(), "create termination message file") {
		t.Errorf("the agent did not log that it could not create the termination message file")
	}

	// A configMap edit cannot be written: the running pod keeps the old
	// content, whole.
	h.writeObjects("web", strings.Replace(webObjects, "hello v1", "hello v2", 1))
	waitFor(t, "the agent to fail the configMap's update naming the path", 2*time.Minute, func() bool {
		for _, l := range strings.Split(h.logs.String(), "\n") {
			if strings.Contains(l, "volumes not updated") && strings.Contains(l, enospc) && strings.Contains(l, diskFS) {
				return true
			}
		}
		return false
	})
	p = h.pod("keep")
	if out, code := h.exec(p, "app", "cat", "/cfg/index.html"); code != 0 || out != "hello v1" {
		t.Fatalf("keep's configMap after a failed update: %q (exit %d), want the old content", out, code)
	}

	// keep runs on: the same container, its output still drained (the beat
	// goes on though its log cannot grow).
	beat := func() int {
		b, _ := os.ReadFile(filepath.Join(h.hostDir, "keep-beat"))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	from := beat()
	waitFor(t, "keep to go on beating with its log full", time.Minute, func() bool { return beat() > from+20 })
	if cs := containerStatus(h.pod("keep"), "app"); cs.ContainerID != keepID || cs.RestartCount != 0 || cs.State.Running == nil {
		t.Fatalf("keep on a full disk: %s restarts %d running %v, want %s still running", cs.ContainerID, cs.RestartCount, cs.State.Running != nil, keepID)
	}
	assertNoTempFiles(t, h.rootDir)

	free()
	h.waitPod("late", "running after the disk was freed", 3*time.Minute, running)
	h.waitPod("exiter", "restarted after the disk was freed", 3*time.Minute, func(p *v1.Pod) bool {
		cs := containerStatus(p, "app")
		return running(p) && cs != nil && cs.State.Running != nil && cs.RestartCount >= 1
	})
	for _, name := range []string{"keep", "late"} {
		waitFor(t, name+"'s configMap to follow the edit", 3*time.Minute, func() bool {
			out, code := h.exec(h.pod(name), "app", "cat", "/cfg/index.html")
			return code == 0 && out == "hello v2"
		})
	}
	if cs := containerStatus(h.pod("keep"), "app"); cs.ContainerID != keepID || cs.RestartCount != 0 {
		t.Fatalf("keep after the disk was freed: %s restarts %d, want %s", cs.ContainerID, cs.RestartCount, keepID)
	}
	assertNoTempFiles(t, h.rootDir)
}

// assertNoTempFiles checks that no temporary file of an atomic write is left
// under dir, and that each atomically written volume holds one generation of
// its files: the one its ..data link names.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.Contains(name, ".tmp") || strings.HasPrefix(name, "..data_tmp") {
			t.Errorf("temporary file left: %s", path)
		}
		if name != "..data" {
			return nil
		}
		cur, err := os.Readlink(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		entries, err := os.ReadDir(filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if n := e.Name(); strings.HasPrefix(n, "..") && n != "..data" && n != cur {
				t.Errorf("a generation left beside the current one (%s) in %s: %s", cur, filepath.Dir(path), n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
