package cri_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/loopfs"
	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// The shim's root and state directories on small filesystems of their own,
// filled up: calls that need to write fail naming the path, nothing running is
// lost (a container that exits meanwhile keeps its exit code), no record is left
// torn, and everything works again once space is freed, across a restart too.
func TestFullDisk(t *testing.T) {
	testenv.RequireRoot(t)
	// Mounted first, so that they are unmounted after everything else is gone.
	rootFS, stateFS := loopfs.Mount(t, 160), loopfs.Mount(t, 48)
	h := newHarness(t)
	h.root, h.state = filepath.Join(rootFS, "root"), filepath.Join(stateFS, "state")
	h.start()
	h.importImage("busybox")

	pod, podCfg := h.runPod("disk")
	ctl := t.TempDir()
	keep := h.createContainer(pod, podCfg, containerConfig("keep", busybox, "sleep", "100000"))
	exiterCfg := containerConfig("exiter", busybox, "sh", "-c", "echo started; while [ ! -e /ctl/go ]; do sleep 0.05; done; exit 5")
	exiterCfg.Mounts = []*runtime.Mount{{ContainerPath: "/ctl", HostPath: ctl}}
	exiter := h.createContainer(pod, podCfg, exiterCfg)
	created := h.createContainer(pod, podCfg, containerConfig("created", busybox, "true"))
	h.startContainer(keep)
	h.startContainer(exiter)
	keepPid := h.info(keep).Pid

	freeState := loopfs.Fill(t, stateFS)
	freeRoot := loopfs.Fill(t, rootFS)
	const enospc = "no space left on device"
	failsNamingPath := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s on a full disk succeeded", what)
			return
		}
		msg := err.Error()
		if !strings.Contains(msg, enospc) || (!strings.Contains(msg, stateFS) && !strings.Contains(msg, rootFS)) {
			t.Errorf("%s on a full disk: %v; want %q and the path", what, err, enospc)
		}
	}
	c := ctx(t)
	_, err := h.rt.RunPodSandbox(c, &runtime.RunPodSandboxRequest{Config: func() *runtime.PodSandboxConfig {
		cfg := podConfig("disk-2")
		cfg.LogDirectory = filepath.Join(stateFS, "logs", "disk-2")
		return cfg
	}()})
	failsNamingPath("RunPodSandbox", err)
	_, err = h.rt.CreateContainer(c, &runtime.CreateContainerRequest{PodSandboxId: pod, SandboxConfig: podCfg, Config: containerConfig("late", busybox, "true")})
	failsNamingPath("CreateContainer", err)
	_, err = h.rt.StartContainer(c, &runtime.StartContainerRequest{ContainerId: created})
	failsNamingPath("StartContainer", err)
	if st := h.status(created); st.State != runtime.ContainerState_CONTAINER_CREATED && st.State != runtime.ContainerState_CONTAINER_EXITED {
		t.Errorf("a container whose start failed on a full disk is %v", st.State)
	}

	// The exiter ends while nothing can be written: its exit must not be lost.
	touch(t, filepath.Join(ctl, "go"))
	if st, pid := h.status(keep).State, h.info(keep).Pid; st != runtime.ContainerState_CONTAINER_RUNNING || pid != keepPid {
		t.Fatalf("keep on a full disk: %v pid %d, want RUNNING pid %d", st, pid, keepPid)
	}
	if _, err := h.rt.ListContainers(c, &runtime.ListContainersRequest{}); err != nil {
		t.Fatalf("ListContainers on a full disk: %v", err)
	}
	if _, err := h.img.ImageFsInfo(c, &runtime.ImageFsInfoRequest{}); err != nil {
		t.Fatalf("ImageFsInfo on a full disk: %v", err)
	}
	assertRecordsWhole(t, h.state)

	freeState()
	freeRoot()
	st := h.waitState(exiter, runtime.ContainerState_CONTAINER_EXITED, 3*time.Minute)
	if st.ExitCode != 5 {
		t.Fatalf("exiter after the disk was freed: exit code %d (%q), want 5", st.ExitCode, st.Message)
	}
	// Everything works again.
	again := h.createContainer(pod, podCfg, containerConfig("again", busybox, "sh", "-c", "exit 3"))
	h.startContainer(again)
	if st := h.waitState(again, runtime.ContainerState_CONTAINER_EXITED, 3*time.Minute); st.ExitCode != 3 {
		t.Fatalf("a container after the disk was freed: exit code %d", st.ExitCode)
	}
	h.runPod("disk-3")

	// And across a restart: what happened while the disk was full is on disk.
	h.stopServer()
	h.start()
	// The pods' own cleanups were registered before this server and run after
	// its stop: remove every pod while it runs.
	t.Cleanup(func() { removeAllPods(h) })
	if st, pid := h.status(keep).State, h.info(keep).Pid; st != runtime.ContainerState_CONTAINER_RUNNING || pid != keepPid {
		t.Fatalf("keep after a restart: %v pid %d, want RUNNING pid %d", st, pid, keepPid)
	}
	if st := h.status(exiter); st.State != runtime.ContainerState_CONTAINER_EXITED || st.ExitCode != 5 {
		t.Fatalf("exiter after a restart: %v code %d", st.State, st.ExitCode)
	}
	assertRecordsWhole(t, h.state)
}

// assertRecordsWhole checks that every record under the state directory is a
// whole JSON document and that no temporary file of an atomic write is left.
func assertRecordsWhole(t *testing.T, state string) {
	t.Helper()
	for _, kind := range []string{"containers", "sandboxes"} {
		dirs, err := os.ReadDir(filepath.Join(state, kind))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			dir := filepath.Join(state, kind, d.Name())
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("temporary file left: %s", filepath.Join(dir, e.Name()))
				}
				if !strings.HasSuffix(e.Name(), ".json") {
					continue
				}
				data, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if !json.Valid(data) {
					t.Errorf("torn record %s: %q", filepath.Join(dir, e.Name()), data)
				}
			}
		}
	}
}

// removeAllPods stops and removes every pod sandbox the shim lists.
func removeAllPods(h *harness) {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := h.rt.ListPodSandbox(c, &runtime.ListPodSandboxRequest{})
	if err != nil {
		h.t.Errorf("list pods to remove: %v", err)
		return
	}
	for _, sb := range resp.Items {
		if _, err := h.rt.StopPodSandbox(c, &runtime.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			h.t.Errorf("stop pod %s: %v", sb.Id, err)
		}
		if _, err := h.rt.RemovePodSandbox(c, &runtime.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			h.t.Errorf("remove pod %s: %v", sb.Id, err)
		}
	}
}
