package spec

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCapabilities is the capability set of an unprivileged container
// before the request's add and drop: the set containerd 2 and CRI-O use.
// Compared with Docker's historical set it leaves out MKNOD, NET_RAW,
// SETFCAP, SYS_CHROOT and AUDIT_WRITE; pods that need them add them.
var DefaultCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_KILL",
}

// knownCapabilities are the Linux capabilities, in bit order (0 to 40).
var knownCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultMaskedPaths and DefaultReadonlyPaths apply when the request gives
// none (containerd's defaults; the kubelet normally sends its own list).
var (
	DefaultMaskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap",
		"/proc/scsi",
	}
	DefaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// capName normalises a capability name: "net_admin" and "CAP_NET_ADMIN" are
// both "CAP_NET_ADMIN".
func capName(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(s, "CAP_") {
		s = "CAP_" + s
	}
	return s
}

// allCapabilities is what "ALL" and privileged grant: what the runtime holds.
func allCapabilities(in Input) []string {
	if in.Host.Capabilities != nil {
		return slices.Clone(in.Host.Capabilities)
	}
	return slices.Clone(knownCapabilities)
}

// setCapabilities computes the bounding, effective and permitted sets as
// containerd does: start from the default set (everything when privileged);
// "ALL" in add grants everything and "ALL" in drop clears the set, both
// before the named adds and drops, so drop ALL + add X leaves exactly X.
// Ambient capabilities (add_ambient_capabilities) are also made inheritable
// and permitted; otherwise the ambient and inheritable sets stay empty.
func setCapabilities(p *specs.Process, in Input) error {
	sc := in.Config.GetLinux().GetSecurityContext()
	if sc.GetPrivileged() {
		all := allCapabilities(in)
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: slices.Clone(all), Permitted: slices.Clone(all)}
		return nil
	}
	set := in.DefaultCapabilities
	if set == nil {
		set = DefaultCapabilities
	}
	set = slices.Clone(set)
	for i, c := range set {
		set[i] = capName(c)
		if !slices.Contains(knownCapabilities, set[i]) {
			return fmt.Errorf("container %s: default capability %q is unknown", in.ID, c)
		}
	}

	caps := sc.GetCapabilities()
	const f = "linux.security_context.capabilities."
	adds, err := capList(f+"add_capabilities", caps.GetAddCapabilities())
	if err != nil {
		return err
	}
	drops, err := capList(f+"drop_capabilities", caps.GetDropCapabilities())
	if err != nil {
		return err
	}
	ambient, err := capList(f+"add_ambient_capabilities", caps.GetAddAmbientCapabilities())
	if err != nil {
		return err
	}
	if slices.Contains(ambient, "ALL") {
		return fieldErr(f+"add_ambient_capabilities", "ALL is not allowed for ambient capabilities")
	}
	if slices.Contains(adds, "ALL") {
		set = allCapabilities(in)
	}
	if slices.Contains(drops, "ALL") {
		set = nil
	}
	for _, c := range append(adds, ambient...) {
		if c != "ALL" && !slices.Contains(set, c) {
			set = append(set, c)
		}
	}
	set = slices.DeleteFunc(set, func(c string) bool { return slices.Contains(drops, c) })
	for _, c := range ambient {
		if slices.Contains(drops, c) {
			return fieldErr(f+"add_ambient_capabilities", "%s is also dropped", c)
		}
	}
	p.Capabilities = &specs.LinuxCapabilities{
		Bounding:    set,
		Effective:   slices.Clone(set),
		Permitted:   slices.Clone(set),
		Inheritable: ambient,
		Ambient:     slices.Clone(ambient),
	}
	return nil
}

// capList normalises names, keeping "ALL" as is, and rejects unknown ones.
func capList(field string, names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for i, n := range names {
		if strings.EqualFold(strings.TrimSpace(n), "ALL") {
			out = append(out, "ALL")
			continue
		}
		c := capName(n)
		if !slices.Contains(knownCapabilities, c) {
			return nil, fieldErr(fmt.Sprintf("%s[%d]", field, i), "unknown capability %q", n)
		}
		out = append(out, c)
	}
	return out, nil
}

// setSecurity sets masked and read-only paths (none for a privileged
// container), the seccomp filter, the AppArmor profile and SELinux labels.
// It runs after setCapabilities: the default seccomp profile depends on the
// container's capabilities.
func setSecurity(s *specs.Spec, in Input) error {
	sc := in.Config.GetLinux().GetSecurityContext()
	if !sc.GetPrivileged() {
		s.Linux.MaskedPaths = slices.Clone(DefaultMaskedPaths)
		if m := sc.GetMaskedPaths(); len(m) > 0 {
			s.Linux.MaskedPaths = slices.Clone(m)
		}
		s.Linux.ReadonlyPaths = slices.Clone(DefaultReadonlyPaths)
		if r := sc.GetReadonlyPaths(); len(r) > 0 {
			s.Linux.ReadonlyPaths = slices.Clone(r)
		}
	}
	if err := setSeccomp(s, in); err != nil {
		return err
	}
	if err := setAppArmor(s.Process, in); err != nil {
		return err
	}
	return checkSELinux(in)
}

// capabilitiesOf names the known capabilities whose bits are set in mask.
func capabilitiesOf(mask uint64) []string {
	caps := []string{}
	for bit, name := range knownCapabilities {
		if mask&(1<<bit) != 0 {
			caps = append(caps, name)
		}
	}
	return caps
}
