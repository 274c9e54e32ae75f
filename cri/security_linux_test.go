//lint:file-ignore SA1019 these tests exercise the deprecated profile fields on purpose

package cri_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Security profiles through the CRI: seccomp from every source reaches the
// container's processes (exec'd ones too), AppArmor and SELinux requests are
// handled as this host allows.
func TestSecurityProfiles(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod, podCfg := h.runPod("secure")
	profile := filepath.Join(filepath.Dir(h.root), "no-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(filepath.Dir(h.root), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "DENY"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(name string, adjust func(*runtime.LinuxContainerSecurityContext)) string {
		t.Helper()
		cfg := containerConfig(name, busybox, "sleep", "1000")
		adjust(cfg.Linux.SecurityContext)
		id := h.createContainer(pod, podCfg, cfg)
		h.startContainer(id)
		return id
	}
	seccompMode := func(id string) string {
		t.Helper()
		out := h.mustExec(id, "grep", "^Seccomp:", "/proc/self/status")
		return strings.TrimSpace(strings.TrimPrefix(out, "Seccomp:"))
	}
	fails := func(id string, cmd ...string) bool {
		t.Helper()
		r, err := h.rt.ExecSync(ctx(t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 20})
		if err != nil {
			t.Fatal(err)
		}
		return r.ExitCode != 0
	}

	unconfined := run("unconfined", func(*runtime.LinuxContainerSecurityContext) {})
	def := run("default", func(sc *runtime.LinuxContainerSecurityContext) {
		sc.Seccomp = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}
	})
	legacy := run("legacy", func(sc *runtime.LinuxContainerSecurityContext) {
		sc.SeccompProfilePath = "runtime/default"
	})
	local := run("local", func(sc *runtime.LinuxContainerSecurityContext) {
		sc.Seccomp = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: profile}
	})
	for id, want := range map[string]string{unconfined: "0", def: "2", legacy: "2", local: "2"} {
		if got := seccompMode(id); got != want {
			t.Errorf("container %s: Seccomp mode %q, want %q", h.status(id).Metadata.Name, got, want)
		}
	}
	if !fails(def, "unshare", "-U", "true") {
		t.Error("RuntimeDefault allowed unshare without CAP_SYS_ADMIN")
	}
	if !fails(local, "mkdir", "/tmp/x") || fails(unconfined, "mkdir", "/tmp/x") {
		t.Error("the Localhost profile does not deny mkdir (or the unconfined container cannot mkdir)")
	}

	create := func(name string, adjust func(*runtime.LinuxContainerSecurityContext)) error {
		cfg := containerConfig(name, busybox, "true")
		adjust(cfg.Linux.SecurityContext)
		_, err := h.rt.CreateContainer(ctx(t), &runtime.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
		return err
	}
	wantCode(t, "a bad Localhost seccomp profile", create("bad", func(sc *runtime.LinuxContainerSecurityContext) {
		sc.Seccomp = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: bad}
	}), codes.InvalidArgument, "config.linux.security_context.seccomp.localhost_ref")
	wantCode(t, "the file of a bad Localhost seccomp profile", create("bad2", func(sc *runtime.LinuxContainerSecurityContext) {
		sc.SeccompProfilePath = "localhost/" + bad
	}), codes.InvalidArgument, bad)

	if _, err := os.Stat("/sys/module/apparmor/parameters/enabled"); err != nil {
		wantCode(t, "an AppArmor profile on a host without AppArmor", create("aa", func(sc *runtime.LinuxContainerSecurityContext) {
			sc.Apparmor = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: "k8s-deny-write"}
		}), codes.InvalidArgument, "AppArmor is not enabled on this host")
		if err := create("aa-default", func(sc *runtime.LinuxContainerSecurityContext) {
			sc.Apparmor = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}
		}); err != nil {
			t.Errorf("AppArmor RuntimeDefault on a host without AppArmor: %v", err)
		}
	}
	if _, err := os.Stat("/sys/fs/selinux/enforce"); err != nil {
		if err := create("selinux", func(sc *runtime.LinuxContainerSecurityContext) {
			sc.SelinuxOptions = &runtime.SELinuxOption{Type: "container_t", Level: "s0:c1,c2"}
		}); err != nil {
			t.Errorf("SELinux options on a host without SELinux: %v", err)
		}
		waitFor(t, "the note about ignored SELinux options", 5*time.Second, func() bool {
			return strings.Contains(h.logs.String(), "SELinux is not enabled on this host")
		})
	}
}
