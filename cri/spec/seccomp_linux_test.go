package spec

import (
	"path/filepath"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// TestRuncAppliesSeccomp runs containers with runc under each seccomp source
// and checks what the kernel reports and enforces: the filter mode in
// /proc/self/status, a system call the default profile denies (unshare
// without CAP_SYS_ADMIN) and one a Localhost profile denies (mkdir).
func TestRuncAppliesSeccomp(t *testing.T) {
	testenv.RequireRoot(t)
	runc := testenv.Binary(t, "runc")
	host, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(t.TempDir(), "no-mkdir.json")
	mustWrite(t, profile, `{
		"defaultAction": "SCMP_ACT_ALLOW",
		"archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
		            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
		"syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
		              "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]
	}`)
	run := func(t *testing.T, prof *runtime.SecurityProfile) map[string]string {
		t.Helper()
		in := baseInput(busyboxRootfs(t))
		in.Host = &host
		in.Namespaces = Namespaces{}
		in.Files = SandboxFiles{}
		in.CgroupsPath = "/nodekit-spec-test-seccomp-" + filepath.Base(t.TempDir())
		in.Image.Entrypoint = []string{"/bin/sh", "-c"}
		in.Config.Args = []string{`
echo seccomp=$(grep '^Seccomp:' /proc/self/status | cut -f2)
if unshare -U true 2>/dev/null; then echo userns=ok; else echo userns=denied; fi
if mkdir /tmp/d 2>/dev/null; then echo mkdir=ok; else echo mkdir=denied; fi
`}
		sc(&in).Seccomp = prof
		s, err := Generate(in)
		if err != nil {
			t.Fatal(err)
		}
		return lines(runContainer(t, runc, s))
	}

	unconfined := run(t, &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Unconfined})
	if unconfined["seccomp"] != "0" || unconfined["mkdir"] != "ok" {
		t.Errorf("Unconfined: %v, want Seccomp 0 and mkdir allowed", unconfined)
	}
	def := run(t, &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault})
	if def["seccomp"] != "2" || def["mkdir"] != "ok" || def["userns"] != "denied" {
		t.Errorf("RuntimeDefault: %v, want Seccomp 2 (filter), mkdir allowed, unshare denied", def)
	}
	if unconfined["userns"] != "ok" {
		t.Logf("unshare -U fails even unconfined on this host (%v): only the filter mode proves RuntimeDefault", unconfined)
	}
	local := run(t, &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: profile})
	if local["seccomp"] != "2" || local["mkdir"] != "denied" {
		t.Errorf("Localhost: %v, want Seccomp 2 and mkdir denied", local)
	}
}
