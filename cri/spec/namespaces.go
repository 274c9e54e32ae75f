package spec

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// setNamespaces: a new mount namespace always; network, IPC and UTS join the
// pod's pinned files or stay the host's; PID is new per container, the pod's
// or the target's (a path), or the host's (NODE); a new cgroup namespace on
// cgroup v2 for unprivileged containers (containerd: v1 and privileged
// containers keep the host's for compatibility).
func setNamespaces(s *specs.Spec, in Input) error {
	nsOpts := in.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	const usernsField = "linux.security_context.namespace_options.userns_options.mode"
	switch mode := nsOpts.GetUsernsOptions().GetMode(); {
	case nsOpts.GetUsernsOptions() == nil || mode == runtime.NamespaceMode_NODE:
		if in.Namespaces.User != "" {
			return fieldErr(usernsField, "the pod has a user namespace; its containers must use it (POD), not the host's")
		}
	case mode == runtime.NamespaceMode_POD:
		if in.Namespaces.User == "" {
			return fieldErr(usernsField, "POD, but the pod sandbox has no user namespace")
		}
		if in.Config.GetLinux().GetSecurityContext().GetPrivileged() {
			return fieldErr("linux.security_context.privileged", "a privileged container cannot run in a user namespace")
		}
		// The user namespace is joined first (runc orders it so), which is
		// why the pod's other namespaces were created inside it.
		ns = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace, Path: in.Namespaces.User})
		s.Linux.UIDMappings = in.Namespaces.UIDMappings
		s.Linux.GIDMappings = in.Namespaces.GIDMappings
	default:
		return fieldErr(usernsField, "%s: a container shares its pod's user namespace (POD) or the host's (NODE)", mode)
	}
	add := func(t specs.LinuxNamespaceType, p string) {
		if p != "" {
			ns = append(ns, specs.LinuxNamespace{Type: t, Path: p})
		}
	}
	add(specs.NetworkNamespace, in.Namespaces.Network)
	add(specs.IPCNamespace, in.Namespaces.IPC)
	add(specs.UTSNamespace, in.Namespaces.UTS)

	switch mode := nsOpts.GetPid(); mode {
	case runtime.NamespaceMode_NODE:
	case runtime.NamespaceMode_CONTAINER:
		// The config asks for isolation: a pinned pod namespace is not joined.
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case runtime.NamespaceMode_POD, runtime.NamespaceMode_TARGET:
		// POD (the proto's zero value) joins the pod's PID namespace: the
		// path of the one the pod holds, the host's for a host-PID pod, and
		// for a pod that does not share one (its config asked for CONTAINER)
		// a new one. TARGET without the target's namespace would silently
		// isolate the debug container, so it is an error.
		switch {
		case mode == runtime.NamespaceMode_TARGET && in.Namespaces.PID == "":
			return fmt.Errorf("container %s: pid namespace mode TARGET (%q) needs the target's pid namespace path", in.ID, nsOpts.GetTargetId())
		case in.Namespaces.PID == "" && in.Namespaces.HostPID:
		default:
			ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: in.Namespaces.PID})
		}
	default:
		return fieldErr("linux.security_context.namespace_options.pid", "unknown namespace mode %d", mode)
	}

	if in.Host.CgroupV2 && !in.Config.GetLinux().GetSecurityContext().GetPrivileged() {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	s.Linux.Namespaces = ns

	if in.Namespaces.UTS != "" {
		h, err := hostname(in)
		if err != nil {
			return err
		}
		s.Hostname = h
	}
	return nil
}

// ipcSysctls are the kernel.* sysctls the IPC namespace scopes (with fs.mqueue.*).
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

// setSysctls applies the pod's sysctls. With no infra container, every
// container of the pod sets them in the namespaces it joins (idempotently).
// A sysctl is accepted only if a namespace the pod does not share with the
// host scopes it, as runc checks: otherwise it would change the node.
func setSysctls(s *specs.Spec, in Input) error {
	sysctls := in.Sandbox.GetLinux().GetSysctls()
	if len(sysctls) == 0 {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(sysctls)) {
		field := fmt.Sprintf("sandbox_config.linux.sysctls[%q]", k)
		name := dottedSysctl(k)
		var nsPath, nsName string
		switch {
		case slices.Contains(ipcSysctls, name) || strings.HasPrefix(name, "fs.mqueue."):
			nsPath, nsName = in.Namespaces.IPC, "ipc"
		case strings.HasPrefix(name, "net."):
			nsPath, nsName = in.Namespaces.Network, "network"
		case name == "kernel.domainname":
			nsPath, nsName = in.Namespaces.UTS, "uts"
		case name == "kernel.hostname":
			return fieldErr(field, "set the hostname through the pod's hostname, not a sysctl")
		default:
			return fieldErr(field, "%q is not scoped by a namespace the pod owns", k)
		}
		if nsPath == "" {
			return fieldErr(field, "%q would change the node: the pod shares the host's %s namespace", k, nsName)
		}
	}
	s.Linux.Sysctl = maps.Clone(sysctls)
	return nil
}

// dottedSysctl normalises "net/ipv4/ip_forward" to "net.ipv4.ip_forward" (a
// name using "/" as separator may contain dots, which then become "/").
func dottedSysctl(k string) string {
	i := strings.IndexAny(k, "./")
	if i < 0 || k[i] == '.' {
		return k
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, k)
}
