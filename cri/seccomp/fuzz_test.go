package seccomp

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fuzzTargets are the containers each accepted profile is resolved for.
var fuzzTargets = []Target{
	{Arch: "amd64", Kernel: "6.1.0-18-amd64"},
	{Arch: "arm64", Capabilities: []string{"CAP_SYS_ADMIN", "sys_ptrace"}, Kernel: "4.8"},
	{Arch: "riscv64"},
	{Arch: "386", Capabilities: []string{"CAP_BPF"}, Kernel: "5.10"},
}

// FuzzParse: a profile Parse accepts is valid, encodes to JSON that parses to
// the same profile, and resolves for every target into a runtime-spec filter
// that names only known architectures and actions, keeps no more rules than
// the profile has, and loads again as a profile (the runtime-spec format is a
// subset of moby's). Seeds: the test profiles, the default profile and
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	def, err := json.Marshal(DefaultProfile())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{dockerProfile, ociProfile, string(def),
		`{"defaultAction": "SCMP_ACT_ALLOW"}`,
		`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_NOTIFY"}], "listenerPath": "/run/l.sock"}`,
		`{"defaultAction": "SCMP_ACT_LOG", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.x"}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 256<<10 {
			return
		}
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse failed (%v) but returned a profile", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse accepted a profile Validate refuses: %v", err)
		}
		enc, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		p2, err := Parse(enc)
		if err != nil {
			t.Fatalf("the encoded profile %s does not parse: %v", enc, err)
		}
		if enc2, _ := json.Marshal(p2); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the profile:\n%s\n%s", enc, enc2)
		}
		for _, tg := range fuzzTargets {
			s, err := p.Resolve(tg)
			if err != nil {
				t.Fatalf("Resolve(%+v) of a valid profile: %v", tg, err)
			}
			checkResolved(t, p, tg, s)
		}
	})
}

func checkResolved(t *testing.T, p *Profile, tg Target, s *specs.LinuxSeccomp) {
	t.Helper()
	if s == nil {
		t.Fatalf("Resolve(%+v): nil filter without an error", tg)
	}
	if s.DefaultAction != p.DefaultAction {
		t.Fatalf("Resolve(%+v): default action %q, profile's %q", tg, s.DefaultAction, p.DefaultAction)
	}
	if len(s.Syscalls) > len(p.Syscalls) {
		t.Fatalf("Resolve(%+v): %d rules from a profile of %d", tg, len(s.Syscalls), len(p.Syscalls))
	}
	for _, a := range s.Architectures {
		if !slices.Contains(knownArches, a) {
			t.Fatalf("Resolve(%+v): unknown architecture %q", tg, a)
		}
	}
	for i, r := range s.Syscalls {
		if len(r.Names) == 0 {
			t.Fatalf("Resolve(%+v): rule %d names no system call", tg, i)
		}
		if !slices.Contains(knownActions, r.Action) {
			t.Fatalf("Resolve(%+v): rule %d: unknown action %q", tg, i, r.Action)
		}
		if len(r.Args) > 0 && r.Args[0].Index >= maxArgs {
			t.Fatalf("Resolve(%+v): rule %d: argument index %d", tg, i, r.Args[0].Index)
		}
	}
	enc, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("encode the filter: %v", err)
	}
	if _, err := Parse(enc); err != nil {
		t.Fatalf("Resolve(%+v) gave a filter that does not load as a profile: %v\n%s", tg, err, enc)
	}
}
