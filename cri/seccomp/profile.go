package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Profile is a seccomp profile in moby's format, a superset of the
// runtime-spec's LinuxSeccomp. The zero value is invalid: DefaultAction is
// required.
type Profile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []ArchMap                `json:"archMap,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []Syscall                `json:"syscalls,omitempty"`
}

// ArchMap says which architectures to filter on a node whose native one is
// Arch: Arch and its SubArches.
type ArchMap struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

// Syscall is one rule: Action for the named system calls when every Args
// comparison holds. Includes and Excludes decide whether the rule is part of a
// given container's filter at all.
type Syscall struct {
	Name     string                   `json:"name,omitempty"` // moby's older single-name form
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []Arg                    `json:"args,omitempty"`
	Comment  string                   `json:"comment,omitempty"`
	Includes *Filter                  `json:"includes,omitempty"`
	Excludes *Filter                  `json:"excludes,omitempty"`
}

// Arg compares the system call argument Index with Value (and ValueTwo for
// SCMP_CMP_MASKED_EQ, where Value is the mask).
type Arg struct {
	Index    uint                       `json:"index"`
	Value    uint64                     `json:"value"`
	ValueTwo uint64                     `json:"valueTwo,omitempty"`
	Op       specs.LinuxSeccompOperator `json:"op"`
}

// Filter is a condition on the container. As Includes, a rule applies only if
// the architecture is one of Arches (when given), the container holds every
// capability in Caps and the kernel is at least MinKernel. As Excludes, a rule
// is left out if any of them holds.
type Filter struct {
	Arches    []string `json:"arches,omitempty"` // GOARCH names, plus "x32" and "x86"
	Caps      []string `json:"caps,omitempty"`   // "CAP_SYS_ADMIN"
	MinKernel string   `json:"minKernel,omitempty"`
}

// Target is the container a profile is resolved for.
type Target struct {
	// Arch is the GOARCH of the node; "" means this program's.
	Arch string
	// Capabilities is the container's bounding set ("CAP_SYS_ADMIN" or "SYS_ADMIN").
	Capabilities []string
	// Kernel is the node's kernel release ("6.1.0-18-amd64"); "" means new
	// enough for every minKernel condition.
	Kernel string
}

// Parse decodes a profile in moby's or the runtime-spec's JSON format and
// checks it. Unknown keys are errors: a misspelt key would otherwise be
// ignored and silently change what the filter does. Errors name the field
// ("syscalls[3].action").
func Parse(data []byte) (*Profile, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty profile")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			line, col := position(data, syn.Offset)
			return nil, fmt.Errorf("line %d, column %d: %w", line, col, err)
		}
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Load reads and parses the profile file at path; errors name the file.
func Load(path string) (*Profile, error) {
	data, err := readProfile(path)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	return p, nil
}

// maxProfileSize bounds a profile file: the largest real ones (the runtimes'
// defaults) are tens of KiB.
const maxProfileSize = 1 << 20

// readProfile reads a profile file, which must be a regular file of at most
// maxProfileSize: a localhost_ref naming /dev/zero would otherwise grow memory
// until the shim dies, and one naming a FIFO would block CreateContainer.
func readProfile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxProfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxProfileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxProfileSize)
	}
	return data, nil
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	off = min(off, int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}

var (
	knownActions = []specs.LinuxSeccompAction{
		specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap,
		specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
	}
	knownOps = []specs.LinuxSeccompOperator{
		specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
	}
	knownFlags = []specs.LinuxSeccompFlag{
		specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow,
		specs.LinuxSeccompFlagWaitKillableRecv, "SECCOMP_FILTER_FLAG_TSYNC",
	}
)

// maxArgs is how many arguments a system call has at most.
const maxArgs = 6

// Validate checks the profile's values; the error names the first bad field.
func (p *Profile) Validate() error {
	if err := checkAction("defaultAction", p.DefaultAction, p.DefaultErrnoRet, p.ListenerPath); err != nil {
		return err
	}
	if p.DefaultAction == specs.ActNotify {
		return errors.New("defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return errors.New("architectures and archMap: give one or the other")
	}
	for i, a := range p.Architectures {
		if !slices.Contains(knownArches, a) {
			return fmt.Errorf("architectures[%d]: unknown architecture %q", i, a)
		}
	}
	for i, m := range p.ArchMap {
		if !slices.Contains(knownArches, m.Arch) {
			return fmt.Errorf("archMap[%d].architecture: unknown architecture %q", i, m.Arch)
		}
		for j, a := range m.SubArches {
			if !slices.Contains(knownArches, a) {
				return fmt.Errorf("archMap[%d].subArchitectures[%d]: unknown architecture %q", i, j, a)
			}
		}
	}
	for i, f := range p.Flags {
		if !slices.Contains(knownFlags, f) {
			return fmt.Errorf("flags[%d]: unknown flag %q", i, f)
		}
	}
	for i, sc := range p.Syscalls {
		field := fmt.Sprintf("syscalls[%d]", i)
		switch {
		case sc.Name != "" && len(sc.Names) > 0:
			return fmt.Errorf("%s: give name or names, not both", field)
		case sc.Name == "" && len(sc.Names) == 0:
			return fmt.Errorf("%s.names: no system call named", field)
		}
		if sc.Name != "" && strings.TrimSpace(sc.Name) == "" {
			return fmt.Errorf("%s.name: empty", field)
		}
		for j, n := range sc.Names {
			if strings.TrimSpace(n) == "" {
				return fmt.Errorf("%s.names[%d]: empty", field, j)
			}
		}
		if err := checkAction(field+".action", sc.Action, sc.ErrnoRet, p.ListenerPath); err != nil {
			return err
		}
		for j, a := range sc.Args {
			af := fmt.Sprintf("%s.args[%d]", field, j)
			if a.Index >= maxArgs {
				return fmt.Errorf("%s.index: %d is not below %d", af, a.Index, maxArgs)
			}
			if !slices.Contains(knownOps, a.Op) {
				return fmt.Errorf("%s.op: unknown operator %q", af, a.Op)
			}
		}
		for what, f := range map[string]*Filter{"includes": sc.Includes, "excludes": sc.Excludes} {
			if f == nil || f.MinKernel == "" {
				continue
			}
			if _, err := parseKernel(f.MinKernel); err != nil {
				return fmt.Errorf("%s.%s.minKernel: %w", field, what, err)
			}
		}
	}
	return nil
}

func checkAction(field string, a specs.LinuxSeccompAction, errnoRet *uint, listener string) error {
	switch {
	case a == "":
		return fmt.Errorf("%s: missing", field)
	case !slices.Contains(knownActions, a):
		return fmt.Errorf("%s: unknown action %q", field, a)
	case errnoRet != nil && a != specs.ActErrno && a != specs.ActTrace:
		return fmt.Errorf("%s: an errno return is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", field, a)
	case a == specs.ActNotify && listener == "":
		return fmt.Errorf("%s: SCMP_ACT_NOTIFY needs listenerPath", field)
	}
	return nil
}

// Resolve returns the runtime-spec filter of this profile for t: the
// architectures of t's node and the rules whose conditions hold for t.
func (p *Profile) Resolve(t Target) (*specs.LinuxSeccomp, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	arch := t.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	var kernel [2]int
	haveKernel := false
	if t.Kernel != "" {
		k, err := parseKernel(t.Kernel)
		if err != nil {
			return nil, fmt.Errorf("target kernel: %w", err)
		}
		kernel, haveKernel = k, true
	}
	caps := make([]string, len(t.Capabilities))
	for i, c := range t.Capabilities {
		caps[i] = capName(c)
	}

	out := &specs.LinuxSeccomp{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  cloneUint(p.DefaultErrnoRet),
		Flags:            slices.Clone(p.Flags),
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
		Architectures:    slices.Clone(p.Architectures),
	}
	if native, ok := nativeArch[arch]; ok {
		for _, m := range p.ArchMap {
			if m.Arch == native {
				out.Architectures = append(out.Architectures, m.Arch)
				out.Architectures = append(out.Architectures, m.SubArches...)
			}
		}
	}

	// atLeast reports whether the node's kernel is at least v; an unknown
	// kernel is taken to be new.
	atLeast := func(v string) bool {
		if !haveKernel {
			return true
		}
		want, _ := parseKernel(v) // checked by Validate
		return kernel[0] > want[0] || (kernel[0] == want[0] && kernel[1] >= want[1])
	}
	holds := func(c string) bool { return slices.Contains(caps, capName(c)) }
	for _, sc := range p.Syscalls {
		if ex := sc.Excludes; ex != nil {
			if slices.Contains(ex.Arches, arch) || slices.ContainsFunc(ex.Caps, holds) ||
				(ex.MinKernel != "" && atLeast(ex.MinKernel)) {
				continue
			}
		}
		if in := sc.Includes; in != nil {
			if (len(in.Arches) > 0 && !slices.Contains(in.Arches, arch)) ||
				!allOf(in.Caps, holds) || (in.MinKernel != "" && !atLeast(in.MinKernel)) {
				continue
			}
		}
		names := sc.Names
		if sc.Name != "" {
			names = []string{sc.Name}
		}
		rule := specs.LinuxSyscall{Names: slices.Clone(names), Action: sc.Action, ErrnoRet: cloneUint(sc.ErrnoRet)}
		for _, a := range sc.Args {
			rule.Args = append(rule.Args, specs.LinuxSeccompArg{Index: a.Index, Value: a.Value, ValueTwo: a.ValueTwo, Op: a.Op})
		}
		out.Syscalls = append(out.Syscalls, rule)
	}
	return out, nil
}

// Default is the RuntimeDefault filter for t: DefaultProfile resolved.
func Default(t Target) *specs.LinuxSeccomp {
	s, err := DefaultProfile().Resolve(t)
	if err != nil {
		// The default profile is valid (tested); only t's kernel can be bad.
		t.Kernel = ""
		s, _ = DefaultProfile().Resolve(t)
	}
	return s
}

func allOf(xs []string, f func(string) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

func cloneUint(p *uint) *uint {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// capName normalises "sys_admin" and "CAP_SYS_ADMIN" to "CAP_SYS_ADMIN".
func capName(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(s, "CAP_") {
		s = "CAP_" + s
	}
	return s
}

// parseKernel reads "major.minor" from a version or kernel release such as
// "4.8", "5.10.0" or "6.1.0-18-amd64".
func parseKernel(v string) ([2]int, error) {
	var out [2]int
	rest := v
	for i := range out {
		end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if end < 0 {
			end = len(rest)
		}
		n, err := strconv.Atoi(rest[:end])
		if err != nil {
			return out, fmt.Errorf("%q is not a kernel version like 5.10", v)
		}
		out[i] = n
		rest = rest[end:]
		if i == 0 {
			if !strings.HasPrefix(rest, ".") {
				return out, fmt.Errorf("%q is not a kernel version like 5.10", v)
			}
			rest = rest[1:]
		}
	}
	return out, nil
}
