package cri_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func usernsPod(name string, hostID uint32) *runtime.PodSandboxConfig {
	cfg := podConfig(name)
	m := []*runtime.IDMapping{{ContainerId: 0, HostId: hostID, Length: 65536}}
	cfg.Linux.SecurityContext.NamespaceOptions = &runtime.NamespaceOption{
		UsernsOptions: &runtime.UserNamespace{Mode: runtime.NamespaceMode_POD, Uids: m, Gids: m},
	}
	return cfg
}

// A pod with its own user namespace: its containers run as root inside and as
// the mapped ids on the node, share the pod's user namespace, and can write to
// their writable layer.
func TestUserNamespacePod(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	c := ctx(t)

	st, err := h.rt.Status(c, &runtime.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var userns, rro bool
	for _, rh := range st.RuntimeHandlers {
		if rh.Name == "" {
			userns, rro = rh.Features.GetUserNamespaces(), rh.Features.GetRecursiveReadOnlyMounts()
		}
	}
	if !userns || !rro || !st.Features.GetSupplementalGroupsPolicy() {
		t.Fatalf("Status features: userns %v rro %v supplemental groups policy %v", userns, rro, st.Features.GetSupplementalGroupsPolicy())
	}

	for name, mapping := range map[string][]*runtime.IDMapping{
		"two mappings":  {{ContainerId: 0, HostId: 100000, Length: 65536}, {ContainerId: 65536, HostId: 300000, Length: 10}},
		"not from root": {{ContainerId: 1, HostId: 100000, Length: 65536}},
		"node root":     {{ContainerId: 0, HostId: 0, Length: 65536}},
		"too few ids":   {{ContainerId: 0, HostId: 100000, Length: 1000}},
	} {
		cfg := usernsPod("bad", 100000)
		cfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions.Uids = mapping
		_, err := h.rt.RunPodSandbox(c, &runtime.RunPodSandboxRequest{Config: cfg})
		wantCode(t, name, err, codes.InvalidArgument, "userns_options.uids")
	}
	for _, mode := range []runtime.NamespaceMode{runtime.NamespaceMode_CONTAINER, runtime.NamespaceMode_TARGET} {
		cfg := usernsPod("bad", 100000)
		cfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions.Mode = mode
		_, err := h.rt.RunPodSandbox(c, &runtime.RunPodSandboxRequest{Config: cfg})
		wantCode(t, mode.String(), err, codes.InvalidArgument, "userns_options.mode")
	}

	cfg := usernsPod("userns", 200000)
	pod := h.runPodConfig(cfg)
	userCtr := func(name string, cmd ...string) string {
		cc := containerConfig(name, busybox, cmd...)
		cc.Linux.SecurityContext.NamespaceOptions = cfg.Linux.SecurityContext.NamespaceOptions
		id := h.createContainer(pod, cfg, cc)
		h.startContainer(id)
		return id
	}
	first := userCtr("first", "sh", "-c", "cat /proc/self/uid_map; touch /made-by-root && echo wrote; exec sleep 1000")
	second := userCtr("second", "sleep", "1000")
	st1 := h.waitState(first, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	h.waitState(second, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	waitFor(t, "the first container's output", 10*time.Second, func() bool {
		data, _ := os.ReadFile(st1.LogPath)
		return strings.Contains(string(data), "wrote")
	})
	log := readLog(t, st1.LogPath)
	if fields := strings.Join(strings.Fields(log), " "); !strings.Contains(fields, "F 0 200000 65536") {
		t.Fatalf("uid_map in the container:\n%s", log)
	}
	nsOf := func(id string) string {
		r, err := h.rt.ExecSync(c, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"readlink", "/proc/self/ns/user"}, Timeout: 10})
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(r.Stdout))
	}
	if a, b := nsOf(first), nsOf(second); a != b || a == "" {
		t.Fatalf("containers of one pod in user namespaces %q and %q", a, b)
	}
	// The image's root-owned files belong to the container's root (id-mapped
	// layers), not to the overflow uid.
	r, err := h.rt.ExecSync(c, &runtime.ExecSyncRequest{ContainerId: first, Cmd: []string{"stat", "-c", "%u:%g", "/bin/busybox", "/etc", "/made-by-root"}, Timeout: 10})
	if err != nil || string(r.Stdout) != "0:0\n0:0\n0:0\n" {
		t.Fatalf("owners inside the user namespace: %q %q, %v", r.GetStdout(), r.GetStderr(), err)
	}
	host, _ := os.Readlink("/proc/self/ns/user")
	if nsOf(first) == host {
		t.Fatal("the container runs in the node's user namespace")
	}
	// On the node, the container's root is the mapped id.
	info := h.info(first)
	var stt unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(info.Pid), &stt); err != nil {
		t.Fatal(err)
	}
	if stt.Uid != 200000 {
		t.Fatalf("the container's process is uid %d on the node, want 200000", stt.Uid)
	}
	// The pod's network works inside the user namespace.
	ps, err := h.rt.PodSandboxStatus(c, &runtime.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil || ps.Status.GetNetwork().GetIp() == "" {
		t.Fatalf("pod IP of a user-namespace pod: %v, %v", ps.GetStatus().GetNetwork(), err)
	}
}

// Recursive read-only mounts make submounts read-only too; a plain read-only
// mount leaves them writable.
func TestRecursiveReadOnlyMounts(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod, podCfg := h.runPod("rro")
	host := t.TempDir()
	sub := filepath.Join(host, "tmpfs")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("none", sub, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(sub, unix.MNT_DETACH); err != nil {
			t.Error(err)
		}
	})

	for _, c := range []struct {
		name      string
		rro       bool
		wantWrite bool
	}{{"ro", false, true}, {"rro", true, false}} {
		cfg := containerConfig(c.name, busybox, "sleep", "1000")
		cfg.Mounts = []*runtime.Mount{{ContainerPath: "/mnt", HostPath: host, Readonly: true, RecursiveReadOnly: c.rro}}
		id := h.createContainer(pod, podCfg, cfg)
		h.startContainer(id)
		h.waitState(id, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
		r, err := h.rt.ExecSync(ctx(t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"touch", "/mnt/tmpfs/f-" + c.name}, Timeout: 10})
		if err != nil {
			t.Fatal(err)
		}
		if wrote := r.ExitCode == 0; wrote != c.wantWrite {
			t.Errorf("%s: writing into the submount: exit %d %q, want success %v", c.name, r.ExitCode, r.Stderr, c.wantWrite)
		}
	}
	cfg := containerConfig("rro-rw", busybox, "true")
	cfg.Mounts = []*runtime.Mount{{ContainerPath: "/mnt", HostPath: host, RecursiveReadOnly: true}}
	_, err := h.rt.CreateContainer(ctx(t), &runtime.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
	wantCode(t, "rro without readonly", err, codes.InvalidArgument, "recursive_read_only")
}
