package cri_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri"
)

// lateKillRuntime writes a wrapper around the real runc that holds every `kill`
// until the container's runtime state is gone (the monitor deletes it once the
// process exits) and only then runs it: the worst moment a container can exit, made
// certain. Every other command goes straight to runc.
func lateKillRuntime(t *testing.T, realRunc string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "late-kill-runc")
	script := `#!/bin/sh
root=""; prev=""
for a in "$@"; do [ "$prev" = "--root" ] && root="$a"; prev="$a"; done
case " $* " in
*" kill "*)
	id=$(echo "$@" | awk '{print $(NF-1)}')
	i=0
	while [ -d "$root/$id" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done
	;;
esac
exec ` + realRunc + ` "$@"
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// A container that exits, and is deleted by its monitor, between the shim's look
// at the runtime and its `runc kill` is stopped, not an error. The wrapper runtime
// makes that interleaving happen on every kill. On the code before the fix,
// StopContainer and StopPodSandbox answered Internal "runc kill --all ...:
// container does not exist" (a critest flake in CI).
func TestStopRacesExit(t *testing.T) {
	h := newHarness(t)
	h.startWith(func(o *cri.Options) { o.Runtime = lateKillRuntime(t, h.runc) })
	h.importImage("busybox")

	// In a pod that shares its PID namespace the container does not own one, so
	// SIGKILL goes through `runc kill --all`, the call that raced.
	pod := h.runPodConfig(podWithPid(podConfig("late-kill"), runtime.NamespaceMode_POD))
	for i := range 5 {
		id := h.createContainer(pod, nil, ctrWithPid(containerConfig(fmt.Sprintf("c%d", i), busybox, "true"), runtime.NamespaceMode_POD, ""))
		h.startContainer(id)
		if _, err := h.rt.StopContainer(ctx(t), &runtime.StopContainerRequest{ContainerId: id}); err != nil {
			t.Fatalf("StopContainer of a container that exited meanwhile: %v", err)
		}
		if st := h.status(id); st.State != runtime.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 {
			t.Fatalf("after stop: state %v exit code %d, want EXITED 0", st.State, st.ExitCode)
		}
		if _, err := h.rt.RemoveContainer(ctx(t), &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
	}
	// StopPodSandbox kills every container of the pod the same way.
	for i := range 3 {
		id := h.createContainer(pod, nil, ctrWithPid(containerConfig(fmt.Sprintf("p%d", i), busybox, "true"), runtime.NamespaceMode_POD, ""))
		h.startContainer(id)
	}
	if _, err := h.rt.StopPodSandbox(ctx(t), &runtime.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("StopPodSandbox with containers that exited meanwhile: %v", err)
	}
}

// The same race without any help, many times and concurrently: containers that
// exit at once, stopped (one by one and through their pod) while they exit. Every
// stop must succeed and every container end EXITED: with code 0, or 143 or 137
// when SIGTERM or SIGKILL caught it first.
func TestStopConcurrentWithExitStress(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")

	const pods, perPod, rounds = 4, 3, 10
	var wg sync.WaitGroup
	errs := make(chan error, pods*rounds*(perPod+1))
	for p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				if err := stopWhileExiting(h, fmt.Sprintf("race-%d-%d", p, r), perPod); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// stopWhileExiting runs a pod whose containers exit at once, stops the first
// containers right after starting them, the last through StopPodSandbox, and
// removes the pod.
func stopWhileExiting(h *harness, name string, n int) error {
	c := ctx(h.t)
	cfg := podWithPid(podConfig(name), runtime.NamespaceMode_POD)
	cfg.LogDirectory = filepath.Join(h.state, "..", "logs", name)
	resp, err := h.rt.RunPodSandbox(c, &runtime.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return fmt.Errorf("%s: run pod: %w", name, err)
	}
	pod := resp.PodSandboxId
	// On an error return; the last step removes the pod and checks.
	defer func() { _, _ = h.rt.RemovePodSandbox(c, &runtime.RemovePodSandboxRequest{PodSandboxId: pod}) }()
	var ids []string
	for i := range n {
		cr, err := h.rt.CreateContainer(c, &runtime.CreateContainerRequest{PodSandboxId: pod, SandboxConfig: cfg,
			Config: ctrWithPid(containerConfig(fmt.Sprintf("c%d", i), busybox, "true"), runtime.NamespaceMode_POD, "")})
		if err != nil {
			return fmt.Errorf("%s: create: %w", name, err)
		}
		if _, err := h.rt.StartContainer(c, &runtime.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
			return fmt.Errorf("%s: start: %w", name, err)
		}
		ids = append(ids, cr.ContainerId)
		if i < n-1 {
			// Stop right away, alternately with and without a grace period.
			if _, err := h.rt.StopContainer(c, &runtime.StopContainerRequest{ContainerId: cr.ContainerId, Timeout: int64(i % 2)}); err != nil {
				return fmt.Errorf("%s: StopContainer while it exits: %w", name, err)
			}
		}
	}
	if _, err := h.rt.StopPodSandbox(c, &runtime.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		return fmt.Errorf("%s: StopPodSandbox while its container exits: %w", name, err)
	}
	for _, id := range ids {
		st, err := h.rt.ContainerStatus(c, &runtime.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			return fmt.Errorf("%s: status: %w", name, err)
		}
		if s := st.Status; s.State != runtime.ContainerState_CONTAINER_EXITED || (s.ExitCode != 0 && s.ExitCode != 137 && s.ExitCode != 143) {
			return fmt.Errorf("%s: container %s after stop: state %v exit code %d", name, id[:12], s.State, s.ExitCode)
		}
	}
	if _, err := h.rt.RemovePodSandbox(c, &runtime.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		return fmt.Errorf("%s: remove pod: %w", name, err)
	}
	return nil
}

// The container's config names its stop signal (the pod's lifecycle.stopSignal):
// StopContainer sends it instead of the image's (SIGTERM here), and the status
// reports it. The shell traps only SIGQUIT: as PID 1 of its own PID namespace it
// ignores SIGTERM, so the old code waited out the whole grace period and
// SIGKILLed it (exit code 137).
func TestStopSignalFromConfig(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod, podCfg := h.runPod("stop-signal")
	ctl := t.TempDir()
	cfg := containerConfig("quit", busybox, "sh", "-c", `trap "exit 7" QUIT; touch /ctl/ready; while :; do sleep 0.1; done`)
	cfg.Mounts = []*runtime.Mount{{ContainerPath: "/ctl", HostPath: ctl}}
	cfg.StopSignal = runtime.Signal_SIGNAL_SIGQUIT
	id := h.createContainer(pod, podCfg, cfg)
	if got := h.status(id).StopSignal; got != runtime.Signal_SIGNAL_SIGQUIT {
		t.Fatalf("status stop signal %v, want SIGQUIT", got)
	}
	h.startContainer(id)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(ctl, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container did not set its trap")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := h.rt.StopContainer(ctx(t), &runtime.StopContainerRequest{ContainerId: id, Timeout: 120}); err != nil {
		t.Fatal(err)
	}
	if st := h.status(id); st.ExitCode != 7 {
		t.Fatalf("exit code %d after StopContainer, want 7 (the SIGQUIT trap)", st.ExitCode)
	}
}
