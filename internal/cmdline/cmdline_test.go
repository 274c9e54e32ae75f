package cmdline

import (
	"os"
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"containerd\x00--config\x00/c.toml\x00", []string{"containerd", "--config", "/c.toml"}},
		{"sleep\x00", []string{"sleep"}},
		{"a\x00\x00b\x00", []string{"a", "", "b"}}, // an empty argument stays
		{"no-terminator", []string{"no-terminator"}},
		{"", nil},
		{"\x00", nil},
	} {
		if got := Split([]byte(tc.in)); !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("Split(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFlagValue(t *testing.T) {
	args := []string{"containerd-shim-runc-v2", "-namespace", "k8s.io", "--id=abc", "-address", "/x.sock", "-empty=", "value", "--last"}
	for name, want := range map[string]string{
		"namespace": "k8s.io", "id": "abc", "address": "/x.sock", "empty": "",
		"value":                   "", // not an option
		"last":                    "", // no value follows
		"missing":                 "",
		"containerd-shim-runc-v2": "", // args[0] is the program, never an option
	} {
		if got := FlagValue(args, name); got != want {
			t.Errorf("FlagValue(%q) = %q, want %q", name, got, want)
		}
	}
	if got := FlagValue(nil, "id"); got != "" {
		t.Errorf("FlagValue(nil) = %q", got)
	}
}

func TestProcessesFindsThisOne(t *testing.T) {
	procs, err := Processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.PID == os.Getpid() {
			if !slices.Equal(p.Args, os.Args) {
				t.Errorf("this process's args = %q, want %q", p.Args, os.Args)
			}
			return
		}
	}
	t.Errorf("this process (%d) is not among the %d found", os.Getpid(), len(procs))
}
