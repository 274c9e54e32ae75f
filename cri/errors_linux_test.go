package cri_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/leakcheck"
)

func wantCode(t *testing.T, what string, err error, code codes.Code, mention string) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: error %v, want code %v", what, err, code)
		return
	}
	if mention != "" && !strings.Contains(status.Convert(err).Message(), mention) {
		t.Errorf("%s: error %q does not mention %q", what, status.Convert(err).Message(), mention)
	}
}

func TestRequestErrors(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	c := ctx(t)

	_, err := h.rt.RunPodSandbox(c, &runtime.RunPodSandboxRequest{})
	wantCode(t, "sandbox without config", err, codes.InvalidArgument, "config")
	bad := podConfig("x")
	bad.Metadata.Name = ""
	_, err = h.rt.RunPodSandbox(c, &runtime.RunPodSandboxRequest{Config: bad})
	wantCode(t, "sandbox without name", err, codes.InvalidArgument, "config.metadata.name")
	_, err = h.rt.RunPodSandbox(c, &runtime.RunPodSandboxRequest{Config: podConfig("x"), RuntimeHandler: "kata"})
	wantCode(t, "unknown runtime handler", err, codes.InvalidArgument, "runtime_handler")

	pod, podCfg := h.runPod("errs")
	_, err = h.rt.RunPodSandbox(c, &runtime.RunPodSandboxRequest{Config: podCfg})
	wantCode(t, "second sandbox with the same metadata", err, codes.AlreadyExists, pod)

	_, err = h.rt.PodSandboxStatus(c, &runtime.PodSandboxStatusRequest{PodSandboxId: "deadbeef"})
	wantCode(t, "status of unknown sandbox", err, codes.NotFound, "deadbeef")
	_, err = h.rt.CreateContainer(c, &runtime.CreateContainerRequest{PodSandboxId: "deadbeef", Config: containerConfig("a", busybox, "true")})
	wantCode(t, "create in unknown sandbox", err, codes.NotFound, "deadbeef")
	_, err = h.rt.CreateContainer(c, &runtime.CreateContainerRequest{PodSandboxId: pod, Config: containerConfig("a", "", "true")})
	wantCode(t, "create without image", err, codes.InvalidArgument, "config.image.image")
	_, err = h.rt.CreateContainer(c, &runtime.CreateContainerRequest{PodSandboxId: pod, Config: containerConfig("a", "nodekit.local/nope:1", "true")})
	wantCode(t, "create from unknown image", err, codes.NotFound, "nodekit.local/nope:1")
	_, err = h.rt.StartContainer(c, &runtime.StartContainerRequest{ContainerId: "deadbeef"})
	wantCode(t, "start unknown container", err, codes.NotFound, "deadbeef")
	_, err = h.rt.ContainerStatus(c, &runtime.ContainerStatusRequest{ContainerId: "deadbeef"})
	wantCode(t, "status of unknown container", err, codes.NotFound, "deadbeef")
	_, err = h.rt.ExecSync(c, &runtime.ExecSyncRequest{ContainerId: "deadbeef", Cmd: []string{"true"}})
	wantCode(t, "exec in unknown container", err, codes.NotFound, "deadbeef")
	for name, e := range map[string]error{
		"stop":  second(h.rt.StopContainer(c, &runtime.StopContainerRequest{ContainerId: "deadbeef"})),
		"rm":    second(h.rt.RemoveContainer(c, &runtime.RemoveContainerRequest{ContainerId: "deadbeef"})),
		"stopp": second(h.rt.StopPodSandbox(c, &runtime.StopPodSandboxRequest{PodSandboxId: "deadbeef"})),
		"rmp":   second(h.rt.RemovePodSandbox(c, &runtime.RemovePodSandboxRequest{PodSandboxId: "deadbeef"})),
	} {
		if e != nil {
			t.Errorf("%s of an unknown id: %v, want success", name, e)
		}
	}

	// A create that fails after the rootfs was mounted leaves nothing behind and
	// frees the name.
	cfg := containerConfig("a", busybox, "true")
	cfg.Linux.SecurityContext.RunAsUsername = "no-such-user"
	_, err = h.rt.CreateContainer(c, &runtime.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
	wantCode(t, "create with an unknown user", err, codes.InvalidArgument, "run_as_username")
	for _, dir := range []string{filepath.Join(h.state, "containers"), filepath.Join(h.root, "containers")} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("a failed create left %d entries in %s", len(entries), dir)
		}
	}
	if m := leakcheck.Mounts(t, filepath.Join(h.state, "containers")); len(m) != 0 {
		t.Errorf("a failed create left mounts: %v", m)
	}
	cfg = containerConfig("a", busybox, "true")
	cfg.Linux.Resources = &runtime.LinuxContainerResources{CpuQuota: -5}
	_, err = h.rt.CreateContainer(c, &runtime.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
	wantCode(t, "create with a negative cpu quota", err, codes.InvalidArgument, "cpu_quota")

	id := h.createContainer(pod, podCfg, containerConfig("a", busybox, "true"))
	_, err = h.rt.CreateContainer(c, &runtime.CreateContainerRequest{PodSandboxId: pod, Config: containerConfig("a", busybox, "true")})
	wantCode(t, "second container with the same name", err, codes.AlreadyExists, id)
	_, err = h.rt.ExecSync(c, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"true"}})
	wantCode(t, "exec in a container that is not running", err, codes.FailedPrecondition, "")
	_, err = h.rt.ExecSync(c, &runtime.ExecSyncRequest{ContainerId: id})
	wantCode(t, "exec without a command", err, codes.InvalidArgument, "cmd")
}

func second[T any](_ T, err error) error { return err }
