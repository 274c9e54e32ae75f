package seccomp

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rulesFor returns the rules of s that name syscall.
func rulesFor(s *specs.LinuxSeccomp, syscall string) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, r := range s.Syscalls {
		if slices.Contains(r.Names, syscall) {
			out = append(out, r)
		}
	}
	return out
}

// unconditionallyAllowed reports whether s allows syscall whatever its arguments.
func unconditionallyAllowed(s *specs.LinuxSeccomp, syscall string) bool {
	for _, r := range rulesFor(s, syscall) {
		if r.Action == specs.ActAllow && len(r.Args) == 0 {
			return true
		}
	}
	return false
}

var defaultCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL"}

func TestDefaultProfile(t *testing.T) {
	cases := []struct {
		name   string
		target Target
		check  func(t *testing.T, s *specs.LinuxSeccomp)
	}{
		{"amd64 with the default capabilities", Target{Arch: "amd64", Capabilities: defaultCaps, Kernel: "6.1.0-18-amd64"}, func(t *testing.T, s *specs.LinuxSeccomp) {
			if s.DefaultAction != specs.ActErrno || s.DefaultErrnoRet == nil || *s.DefaultErrnoRet != uint(errnoEPERM) {
				t.Errorf("default action %s errno %v, want SCMP_ACT_ERRNO with EPERM", s.DefaultAction, s.DefaultErrnoRet)
			}
			if want := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}; !slices.Equal(s.Architectures, want) {
				t.Errorf("architectures = %v, want %v", s.Architectures, want)
			}
			for _, ok := range []string{"read", "openat", "execve", "arch_prctl", "modify_ldt", "ptrace", "getrandom", "rseq", "sendmsg", "setuid"} {
				if !unconditionallyAllowed(s, ok) {
					t.Errorf("%s is not allowed", ok)
				}
			}
			for _, denied := range []string{"mount", "umount2", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "reboot", "chroot",
				"init_module", "kexec_load", "open_by_handle_at", "io_uring_setup", "io_uring_enter", "userfaultfd", "pivot_root", "swapon", "acct", "settimeofday", "syslog", "cacheflush"} {
				if len(rulesFor(s, denied)) > 0 {
					t.Errorf("%s has a rule, want it denied by default: %+v", denied, rulesFor(s, denied))
				}
			}
			clone := rulesFor(s, "clone")
			if len(clone) != 1 || len(clone[0].Args) != 1 || clone[0].Args[0] != (specs.LinuxSeccompArg{Index: 0, Value: 0x7E020000, Op: specs.OpMaskedEqual}) {
				t.Errorf("clone rules = %+v, want one allowing it without namespace flags", clone)
			}
			clone3 := rulesFor(s, "clone3")
			if len(clone3) != 1 || clone3[0].Action != specs.ActErrno || *clone3[0].ErrnoRet != uint(errnoENOSYS) {
				t.Errorf("clone3 rules = %+v, want ENOSYS", clone3)
			}
			socket := rulesFor(s, "socket")
			if len(socket) != 1 || socket[0].Args[0] != (specs.LinuxSeccompArg{Index: 0, Value: afVSOCK, Op: specs.OpNotEqual}) {
				t.Errorf("socket rules = %+v, want all families but AF_VSOCK", socket)
			}
			var pers []uint64
			for _, r := range rulesFor(s, "personality") {
				pers = append(pers, r.Args[0].Value)
			}
			if want := []uint64{0, 8, 0x20000, 0x20008, 0xffffffff}; !slices.Equal(pers, want) {
				t.Errorf("personality values = %#x, want %#x", pers, want)
			}
		}},
		{"CAP_SYS_ADMIN allows namespaces and mounts", Target{Arch: "amd64", Capabilities: append([]string{"SYS_ADMIN"}, defaultCaps...)}, func(t *testing.T, s *specs.LinuxSeccomp) {
			for _, ok := range []string{"mount", "unshare", "setns", "clone", "clone3", "sethostname", "bpf"} {
				if !unconditionallyAllowed(s, ok) {
					t.Errorf("%s is not allowed with CAP_SYS_ADMIN", ok)
				}
			}
			for _, r := range rulesFor(s, "clone3") {
				if r.Action != specs.ActAllow {
					t.Errorf("clone3 rule %+v with CAP_SYS_ADMIN", r)
				}
			}
			if len(rulesFor(s, "clone")) != 1 {
				t.Errorf("clone rules = %+v, want only the unconditional one", rulesFor(s, "clone"))
			}
		}},
		{"capabilities unlock their system calls", Target{Arch: "amd64", Capabilities: []string{"CAP_SYS_PTRACE", "CAP_SYS_TIME", "CAP_SYS_CHROOT", "CAP_DAC_READ_SEARCH", "CAP_SYS_NICE", "CAP_SYS_MODULE"}}, func(t *testing.T, s *specs.LinuxSeccomp) {
			for _, ok := range []string{"kcmp", "pidfd_getfd", "clock_settime", "chroot", "open_by_handle_at", "mbind", "finit_module"} {
				if !unconditionallyAllowed(s, ok) {
					t.Errorf("%s is not allowed", ok)
				}
			}
			if unconditionallyAllowed(s, "mount") {
				t.Error("mount allowed without CAP_SYS_ADMIN")
			}
		}},
		{"old kernel: no ptrace", Target{Arch: "amd64", Kernel: "4.4.0-210-generic"}, func(t *testing.T, s *specs.LinuxSeccomp) {
			if len(rulesFor(s, "ptrace")) != 0 {
				t.Errorf("ptrace allowed on a 4.4 kernel: %+v", rulesFor(s, "ptrace"))
			}
		}},
		{"arm64", Target{Arch: "arm64"}, func(t *testing.T, s *specs.LinuxSeccomp) {
			if want := []specs.Arch{specs.ArchAARCH64, specs.ArchARM}; !slices.Equal(s.Architectures, want) {
				t.Errorf("architectures = %v, want %v", s.Architectures, want)
			}
			if !unconditionallyAllowed(s, "cacheflush") || len(rulesFor(s, "arch_prctl")) != 0 {
				t.Error("arm64 rules: want cacheflush and no arch_prctl")
			}
		}},
		{"s390x passes clone flags second", Target{Arch: "s390x"}, func(t *testing.T, s *specs.LinuxSeccomp) {
			clone := rulesFor(s, "clone")
			if len(clone) != 1 || clone[0].Args[0].Index != 1 {
				t.Errorf("clone rules = %+v, want one on argument 1", clone)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, Default(tc.target))
		})
	}
}

func TestDefaultProfileIsValidAndFresh(t *testing.T) {
	p := DefaultProfile()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	p.Syscalls[0].Names[0] = "changed"
	p.ArchMap[0].SubArches[0] = "changed"
	if q := DefaultProfile(); q.Syscalls[0].Names[0] == "changed" || q.ArchMap[0].SubArches[0] == "changed" {
		t.Error("DefaultProfile shares its tables with callers")
	}
	// No system call is listed twice in the allowlist.
	seen := map[string]bool{}
	for _, n := range DefaultProfile().Syscalls[0].Names {
		if seen[n] {
			t.Errorf("%s listed twice", n)
		}
		seen[n] = true
	}
	if len(seen) < 340 {
		t.Errorf("allowlist has %d system calls, want the full default set", len(seen))
	}
}
