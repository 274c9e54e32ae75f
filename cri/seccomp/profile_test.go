package seccomp

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A profile in moby's format using archMap, args, includes and excludes.
const dockerProfile = `{
	"defaultAction": "SCMP_ACT_ERRNO",
	"defaultErrnoRet": 38,
	"archMap": [
		{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
		{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
	],
	"syscalls": [
		{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
		{"name": "getpid", "action": "SCMP_ACT_ALLOW", "comment": "old single-name form"},
		{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
		{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
		 "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
		{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
		{"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
		{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
		{"names": ["kcmp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"minKernel": "6.0"}}
	]
}`

// The same idea in the runtime-spec's LinuxSeccomp format.
const ociProfile = `{
	"defaultAction": "SCMP_ACT_KILL_PROCESS",
	"architectures": ["SCMP_ARCH_X86_64"],
	"flags": ["SECCOMP_FILTER_FLAG_LOG"],
	"syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
	             {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97, "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]}]
}`

func names(s *specs.LinuxSeccomp) []string {
	var out []string
	for _, r := range s.Syscalls {
		out = append(out, strings.Join(r.Names, ","))
	}
	return out
}

func TestResolve(t *testing.T) {
	cases := []struct {
		name    string
		profile string
		target  Target
		check   func(t *testing.T, s *specs.LinuxSeccomp)
	}{
		{"docker format, unprivileged, new kernel", dockerProfile, Target{Arch: "amd64", Capabilities: []string{"CAP_KILL"}, Kernel: "6.1.0"}, func(t *testing.T, s *specs.LinuxSeccomp) {
			if got, want := names(s), []string{"read,write,exit_group", "getpid", "personality", "clone", "arch_prctl", "ptrace"}; !slices.Equal(got, want) {
				t.Errorf("rules = %q, want %q", got, want)
			}
			if want := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}; !slices.Equal(s.Architectures, want) {
				t.Errorf("architectures = %v, want %v", s.Architectures, want)
			}
			if *s.DefaultErrnoRet != 38 {
				t.Errorf("defaultErrnoRet = %d", *s.DefaultErrnoRet)
			}
			if a := s.Syscalls[3].Args; len(a) != 1 || a[0].Value != 2114060288 || a[0].Op != specs.OpMaskedEqual {
				t.Errorf("clone args = %+v", a)
			}
		}},
		{"docker format, CAP_SYS_ADMIN, old kernel, arm64", dockerProfile, Target{Arch: "arm64", Capabilities: []string{"sys_admin"}, Kernel: "5.4.0-100-generic"}, func(t *testing.T, s *specs.LinuxSeccomp) {
			if got, want := names(s), []string{"read,write,exit_group", "getpid", "personality", "mount", "kcmp"}; !slices.Equal(got, want) {
				t.Errorf("rules = %q, want %q", got, want)
			}
			if want := []specs.Arch{specs.ArchAARCH64, specs.ArchARM}; !slices.Equal(s.Architectures, want) {
				t.Errorf("architectures = %v, want %v", s.Architectures, want)
			}
			if *s.Syscalls[4].ErrnoRet != 1 {
				t.Errorf("kcmp errnoRet = %v", s.Syscalls[4].ErrnoRet)
			}
		}},
		{"runtime-spec format", ociProfile, Target{Arch: "amd64"}, func(t *testing.T, s *specs.LinuxSeccomp) {
			if s.DefaultAction != specs.ActKillProcess || !slices.Equal(s.Architectures, []specs.Arch{specs.ArchX86_64}) ||
				!slices.Equal(s.Flags, []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}) {
				t.Errorf("filter = %+v", s)
			}
			if r := s.Syscalls[1]; *r.ErrnoRet != 97 || r.Args[0].Value != 10 {
				t.Errorf("socket rule = %+v", r)
			}
		}},
		{"archMap without the node's architecture", dockerProfile, Target{Arch: "riscv64"}, func(t *testing.T, s *specs.LinuxSeccomp) {
			if len(s.Architectures) != 0 {
				t.Errorf("architectures = %v, want none (the native one only)", s.Architectures)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.profile))
			if err != nil {
				t.Fatal(err)
			}
			s, err := p.Resolve(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, profile, want string
	}{
		{"empty", "  \n", "empty profile"},
		{"syntax", "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  oops\n}", "line 3, column 3"},
		{"unknown key", `{"defaultAction": "SCMP_ACT_ERRNO", "syscall": []}`, `unknown field "syscall"`},
		{"wrong type", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}`, "syscalls.names"},
		{"no default action", `{"syscalls": []}`, "defaultAction: missing"},
		{"unknown default action", `{"defaultAction": "SCMP_ACT_MAYBE"}`, `defaultAction: unknown action "SCMP_ACT_MAYBE"`},
		{"unknown action", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["x"], "action": "ALLOW"}]}`, `syscalls[1].action: unknown action "ALLOW"`},
		{"unknown op", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "EQ"}]}]}`, `syscalls[0].args[0].op: unknown operator "EQ"`},
		{"arg index", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`, "syscalls[0].args[0].index"},
		{"no names", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}`, "syscalls[0].names: no system call named"},
		{"blank name", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": " ", "action": "SCMP_ACT_ALLOW"}]}`, "syscalls[0].name: empty"},
		{"name and names", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}`, "syscalls[0]: give name or names"},
		{"unknown architecture", `{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "x86_64"]}`, `architectures[1]: unknown architecture "x86_64"`},
		{"architectures and archMap", `{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`, "give one or the other"},
		{"bad sub-architecture", `{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["i386"]}]}`, "archMap[0].subArchitectures[0]"},
		{"bad minKernel", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]}`, "syscalls[0].includes.minKernel"},
		{"errnoRet with allow", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}`, "syscalls[0].action: an errno return is only valid"},
		{"notify without listener", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}`, "needs listenerPath"},
		{"unknown flag", `{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}`, "flags[0]"},
		{"two values", `{"defaultAction": "SCMP_ACT_ERRNO"} {}`, "more than one JSON value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.profile))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(dockerProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "nope"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(good); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "syscalls[0].action") {
		t.Errorf("Load(bad) = %v, want an error naming the file and the field", err)
	}
	_, err = Load(filepath.Join(dir, "missing.json"))
	if err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("Load(missing) = %v, want an error naming the file", err)
	}
}

func TestParseKernel(t *testing.T) {
	for in, want := range map[string][2]int{"4.8": {4, 8}, "5.10.0": {5, 10}, "6.1.0-18-amd64": {6, 1}, "6.18.44-fc-v657": {6, 18}} {
		if got, err := parseKernel(in); err != nil || got != want {
			t.Errorf("parseKernel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "6", "x.1", "6.", ".5"} {
		if _, err := parseKernel(in); err == nil {
			t.Errorf("parseKernel(%q) succeeded", in)
		}
	}
}

// Load reads only a regular file of bounded size: a localhost_ref naming
// /dev/zero grew memory without end, one naming a FIFO blocked forever.
func TestLoadRefusesNonRegularAndHugeFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.json")
	if err := os.WriteFile(huge, append([]byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), bytes.Repeat([]byte(" "), maxProfileSize)...), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/dev/zero": "not a regular file", fifo: "not a regular file", huge: "larger than"} {
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s) = %v, want an error saying %q", path, err, want)
		}
	}
}
