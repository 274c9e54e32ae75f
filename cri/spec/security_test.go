//lint:file-ignore SA1019 these tests exercise the deprecated profile fields on purpose

package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A Localhost profile in Docker's format: args, a capability condition and
// an architecture condition.
const localProfile = `{
	"defaultAction": "SCMP_ACT_ERRNO",
	"archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
	"syscalls": [
		{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
		{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
		{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
		{"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
	]
}`

func seccompRules(s *specs.Spec) []string {
	var out []string
	for _, r := range s.Linux.Seccomp.Syscalls {
		out = append(out, strings.Join(r.Names, ","))
	}
	return out
}

// allows reports whether the filter has a rule allowing name without conditions.
func allows(s *specs.Spec, name string) bool {
	for _, r := range s.Linux.Seccomp.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 && slices.Contains(r.Names, name) {
			return true
		}
	}
	return false
}

func TestGenerateSecurityProfiles(t *testing.T) {
	dir := t.TempDir()
	rootfs := writeRootfs(t, dir, testPasswd, testGroup)
	good := filepath.Join(dir, "profile.json")
	mustWrite(t, good, localProfile)
	loaded := filepath.Join(dir, "apparmor-profiles")
	mustWrite(t, loaded, "k8s-nginx (enforce)\ncri-containerd.apparmor.d (enforce)\n")
	defer func(p string) { appArmorProfiles = p }(appArmorProfiles)
	appArmorProfiles = loaded
	bad := filepath.Join(dir, "bad.json")
	mustWrite(t, bad, `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "op": "GREATER"}]}]}`)

	structured := func(typ runtime.SecurityProfile_ProfileType, ref string) func(*Input) {
		return func(in *Input) { sc(in).Seccomp = &runtime.SecurityProfile{ProfileType: typ, LocalhostRef: ref} }
	}
	legacy := func(path string) func(*Input) {
		return func(in *Input) { sc(in).SeccompProfilePath = path }
	}
	privileged := func(in *Input) {
		sc(in).Privileged = true
		sandboxLinux(in).SecurityContext = &runtime.LinuxSandboxSecurityContext{Privileged: true}
	}
	noSeccomp := func(t *testing.T, s *specs.Spec, notes []string) {
		t.Helper()
		if s.Linux.Seccomp != nil {
			t.Errorf("seccomp filter set, want none: default %s, %d rules", s.Linux.Seccomp.DefaultAction, len(s.Linux.Seccomp.Syscalls))
		}
	}
	runtimeDefault := func(t *testing.T, s *specs.Spec, notes []string) {
		t.Helper()
		f := s.Linux.Seccomp
		if f == nil || f.DefaultAction != specs.ActErrno || len(f.Syscalls) < 10 {
			t.Fatalf("seccomp = %+v, want the runtime default", f)
		}
		if !allows(s, "read") || !allows(s, "ptrace") || allows(s, "mount") || allows(s, "unshare") {
			t.Errorf("default profile for the default capabilities: read %v ptrace %v mount %v unshare %v",
				allows(s, "read"), allows(s, "ptrace"), allows(s, "mount"), allows(s, "unshare"))
		}
	}
	localhost := func(want ...string) func(t *testing.T, s *specs.Spec, notes []string) {
		return func(t *testing.T, s *specs.Spec, notes []string) {
			t.Helper()
			if s.Linux.Seccomp == nil {
				t.Fatal("no seccomp filter")
			}
			equal(t, "rules", seccompRules(s), want)
			if a := s.Linux.Seccomp.Architectures; len(a) != 2 || a[0] != specs.ArchX86_64 {
				t.Errorf("architectures = %v", a)
			}
		}
	}
	cases := []struct {
		name      string
		mutate    func(*Input)
		check     func(t *testing.T, s *specs.Spec, notes []string)
		wantField string
		wantMsg   []string // in the error
	}{
		{name: "nothing asked: unconfined", check: noSeccomp},
		{name: "legacy unconfined", mutate: legacy("unconfined"), check: noSeccomp},
		{name: "legacy runtime/default", mutate: legacy("runtime/default"), check: runtimeDefault},
		{name: "legacy docker/default", mutate: legacy("docker/default"), check: runtimeDefault},
		{name: "legacy localhost/ path", mutate: legacy("localhost/" + good), check: localhost("read,write,exit_group", "personality", "chroot")},
		{name: "legacy unknown value", mutate: legacy("strict"), wantField: "linux.security_context.seccomp_profile_path", wantMsg: []string{`"strict"`}},
		{name: "structured Unconfined", mutate: structured(runtime.SecurityProfile_Unconfined, ""), check: noSeccomp},
		{name: "structured wins over legacy", mutate: func(in *Input) {
			legacy("runtime/default")(in)
			structured(runtime.SecurityProfile_Unconfined, "")(in)
		}, check: noSeccomp},
		{name: "structured RuntimeDefault", mutate: structured(runtime.SecurityProfile_RuntimeDefault, ""), check: runtimeDefault},
		{name: "RuntimeDefault follows capabilities", mutate: func(in *Input) {
			structured(runtime.SecurityProfile_RuntimeDefault, "")(in)
			sc(in).Capabilities = &runtime.Capability{AddCapabilities: []string{"SYS_ADMIN"}}
		}, check: func(t *testing.T, s *specs.Spec, _ []string) {
			if !allows(s, "mount") || !allows(s, "unshare") || !allows(s, "clone") {
				t.Error("CAP_SYS_ADMIN container: mount, unshare and clone are not allowed")
			}
		}},
		{name: "RuntimeDefault on an old kernel", mutate: func(in *Input) {
			structured(runtime.SecurityProfile_RuntimeDefault, "")(in)
			in.Host.Kernel = "4.4.0-210-generic"
		}, check: func(t *testing.T, s *specs.Spec, _ []string) {
			if allows(s, "ptrace") {
				t.Error("ptrace allowed on a 4.4 kernel")
			}
		}},
		{name: "structured Localhost", mutate: structured(runtime.SecurityProfile_Localhost, good), check: localhost("read,write,exit_group", "personality", "chroot")},
		{name: "Localhost with the localhost/ prefix", mutate: structured(runtime.SecurityProfile_Localhost, "localhost/"+good), check: localhost("read,write,exit_group", "personality", "chroot")},
		{name: "Localhost relative path", mutate: structured(runtime.SecurityProfile_Localhost, "profiles/p.json"),
			wantField: "linux.security_context.seccomp.localhost_ref", wantMsg: []string{"not an absolute path"}},
		{name: "Localhost bad file", mutate: structured(runtime.SecurityProfile_Localhost, bad),
			wantField: "linux.security_context.seccomp.localhost_ref", wantMsg: []string{bad, "syscalls[0].args[0].op", `"GREATER"`}},
		{name: "Localhost missing file", mutate: structured(runtime.SecurityProfile_Localhost, filepath.Join(dir, "missing.json")),
			wantField: "linux.security_context.seccomp.localhost_ref", wantMsg: []string{"missing.json"}},
		{name: "legacy localhost bad file", mutate: legacy("localhost/" + bad),
			wantField: "linux.security_context.seccomp_profile_path", wantMsg: []string{bad}},
		{name: "ref without Localhost", mutate: structured(runtime.SecurityProfile_RuntimeDefault, good),
			wantField: "linux.security_context.seccomp.localhost_ref"},
		{name: "unknown profile type", mutate: structured(7, ""), wantField: "linux.security_context.seccomp.profile_type"},
		{name: "privileged: no RuntimeDefault", mutate: func(in *Input) {
			privileged(in)
			structured(runtime.SecurityProfile_RuntimeDefault, "")(in)
		}, check: func(t *testing.T, s *specs.Spec, notes []string) {
			noSeccomp(t, s, notes)
			if len(notes) != 1 || !strings.Contains(notes[0], "privileged") {
				t.Errorf("notes = %q, want one about the privileged container", notes)
			}
		}},
		{name: "privileged: legacy runtime/default", mutate: func(in *Input) {
			privileged(in)
			legacy("runtime/default")(in)
		}, check: noSeccomp},
		{name: "privileged: Localhost is checked but not applied", mutate: func(in *Input) {
			privileged(in)
			in.Host.Capabilities = []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}
			structured(runtime.SecurityProfile_Localhost, good)(in)
		}, check: noSeccomp},
		{name: "privileged: a bad Localhost profile is still an error", mutate: func(in *Input) {
			privileged(in)
			structured(runtime.SecurityProfile_Localhost, "/no/such/profile.json")(in)
		}, wantField: "linux.security_context.seccomp.localhost_ref", wantMsg: []string{"/no/such/profile.json"}},

		// AppArmor. The test host value is explicit: Host.AppArmor.
		{name: "AppArmor RuntimeDefault without AppArmor", mutate: func(in *Input) {
			sc(in).Apparmor = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}
		}, check: func(t *testing.T, s *specs.Spec, notes []string) {
			if s.Process.ApparmorProfile != "" || len(notes) != 0 {
				t.Errorf("apparmor profile %q, notes %q; want none", s.Process.ApparmorProfile, notes)
			}
		}},
		{name: "AppArmor legacy unconfined without AppArmor", mutate: func(in *Input) { sc(in).ApparmorProfile = "unconfined" },
			check: func(t *testing.T, s *specs.Spec, _ []string) {
				if s.Process.ApparmorProfile != "" {
					t.Errorf("apparmor profile %q", s.Process.ApparmorProfile)
				}
			}},
		{name: "AppArmor Localhost without AppArmor", mutate: func(in *Input) {
			sc(in).Apparmor = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: "k8s-nginx"}
		}, wantField: "linux.security_context.apparmor.localhost_ref", wantMsg: []string{"AppArmor is not enabled on this host", "k8s-nginx"}},
		{name: "AppArmor legacy localhost without AppArmor", mutate: func(in *Input) { sc(in).ApparmorProfile = "localhost/k8s-nginx" },
			wantField: "linux.security_context.apparmor_profile", wantMsg: []string{"AppArmor is not enabled on this host"}},
		{name: "AppArmor legacy unknown value", mutate: func(in *Input) { sc(in).ApparmorProfile = "k8s-nginx" },
			wantField: "linux.security_context.apparmor_profile"},
		{name: "AppArmor Localhost with AppArmor", mutate: func(in *Input) {
			in.Host.AppArmor = true
			sc(in).Apparmor = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: "localhost/k8s-nginx"}
		}, check: func(t *testing.T, s *specs.Spec, _ []string) {
			if s.Process.ApparmorProfile != "k8s-nginx" {
				t.Errorf("apparmor profile = %q, want k8s-nginx", s.Process.ApparmorProfile)
			}
		}},
		{name: "AppArmor Localhost profile not loaded", mutate: func(in *Input) {
			in.Host.AppArmor = true
			sc(in).Apparmor = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: "k8s-other"}
		}, wantField: "linux.security_context.apparmor.localhost_ref", wantMsg: []string{`"k8s-other" is not loaded`}},
		{name: "AppArmor RuntimeDefault with AppArmor is noted", mutate: func(in *Input) {
			in.Host.AppArmor = true
			sc(in).Apparmor = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}
		}, check: func(t *testing.T, s *specs.Spec, notes []string) {
			if s.Process.ApparmorProfile != "" || len(notes) != 1 || !strings.Contains(notes[0], "AppArmor") {
				t.Errorf("apparmor profile %q, notes %q", s.Process.ApparmorProfile, notes)
			}
		}},

		// SELinux.
		{name: "SELinux options without SELinux are ignored and noted", mutate: func(in *Input) {
			sc(in).SelinuxOptions = &runtime.SELinuxOption{Type: "spc_t", Level: "s0:c1,c2"}
		}, check: func(t *testing.T, s *specs.Spec, notes []string) {
			if s.Process.SelinuxLabel != "" || s.Linux.MountLabel != "" {
				t.Errorf("labels %q %q, want none", s.Process.SelinuxLabel, s.Linux.MountLabel)
			}
			if len(notes) != 1 || !strings.Contains(notes[0], "SELinux is not enabled") || !strings.Contains(notes[0], "spc_t") {
				t.Errorf("notes = %q, want one about the ignored options", notes)
			}
		}},
		{name: "pod SELinux options without SELinux", mutate: func(in *Input) {
			sandboxLinux(in).SecurityContext = &runtime.LinuxSandboxSecurityContext{SelinuxOptions: &runtime.SELinuxOption{Level: "s0:c5"}}
		}, check: func(t *testing.T, s *specs.Spec, notes []string) {
			if len(notes) != 1 {
				t.Errorf("notes = %q, want one", notes)
			}
		}},
		{name: "SELinux options with SELinux", mutate: func(in *Input) {
			in.Host.SELinux = true
			sc(in).SelinuxOptions = &runtime.SELinuxOption{Type: "spc_t"}
		}, wantField: "linux.security_context.selinux_options"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(rootfs)
			var notes []string
			in.Note = func(m string) { notes = append(notes, m) }
			if tc.mutate != nil {
				tc.mutate(&in)
			}
			s, err := Generate(in)
			if tc.wantField != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tc.wantField {
					t.Fatalf("Generate error = %v, want a FieldError for %s", err, tc.wantField)
				}
				for _, m := range tc.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not mention %q", err, m)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			tc.check(t, s, notes)
		})
	}
}

// The privileged container's other guarantees: every device, every
// capability, no masked or read-only paths, whatever the request lists.
func TestGeneratePrivilegedIgnoresPaths(t *testing.T) {
	in := baseInput(writeRootfs(t, t.TempDir(), testPasswd, testGroup))
	sc(&in).Privileged = true
	sc(&in).MaskedPaths = []string{"/proc/kcore"}
	sc(&in).ReadonlyPaths = []string{"/proc/sys"}
	sandboxLinux(&in).SecurityContext = &runtime.LinuxSandboxSecurityContext{Privileged: true}
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil || s.Linux.Seccomp != nil {
		t.Errorf("privileged: masked %q readonly %q seccomp %v, want none", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Linux.Seccomp != nil)
	}
	if len(s.Process.Capabilities.Bounding) != len(knownCapabilities) {
		t.Errorf("bounding set has %d capabilities, want all %d", len(s.Process.Capabilities.Bounding), len(knownCapabilities))
	}
	if _, err := os.Stat("/dev/null"); err == nil && len(s.Linux.Devices) == 0 {
		t.Error("privileged container got no host devices")
	}
}
