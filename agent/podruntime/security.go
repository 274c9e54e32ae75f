package podruntime

import (
	"fmt"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The /proc paths the kubelet masks and makes read-only for the Default proc
// mount type.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// effectiveSecurity merges the pod's security context under the container's
// (the container wins field by field).
type effectiveSecurity struct {
	runAsUser, runAsGroup *int64
	runAsNonRoot          *bool
	seLinux               *v1.SELinuxOptions
	seccomp               *v1.SeccompProfile
}

func mergeSecurity(pod *v1.Pod, c *v1.Container) effectiveSecurity {
	var e effectiveSecurity
	if p := pod.Spec.SecurityContext; p != nil {
		e = effectiveSecurity{p.RunAsUser, p.RunAsGroup, p.RunAsNonRoot, p.SELinuxOptions, p.SeccompProfile}
	}
	if s := c.SecurityContext; s != nil {
		if s.RunAsUser != nil {
			e.runAsUser = s.RunAsUser
		}
		if s.RunAsGroup != nil {
			e.runAsGroup = s.RunAsGroup
		}
		if s.RunAsNonRoot != nil {
			e.runAsNonRoot = s.RunAsNonRoot
		}
		if s.SELinuxOptions != nil {
			e.seLinux = s.SELinuxOptions
		}
		if s.SeccompProfile != nil {
			e.seccomp = s.SeccompProfile
		}
	}
	return e
}

// containerSecurity is the CRI security context of a container. imageUID and
// imageUser are the image's user (from ImageStatus), for runAsNonRoot.
func (m *Manager) containerSecurity(pod *v1.Pod, c *v1.Container, imageUID *int64, imageUser string) (*runtimeapi.LinuxContainerSecurityContext, error) {
	e := mergeSecurity(pod, c)
	if err := verifyNonRoot(e, imageUID, imageUser); err != nil {
		return nil, err
	}
	sc := &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{
			Network: networkMode(pod), Pid: pidMode(pod), Ipc: ipcMode(pod),
		},
	}
	switch {
	case e.runAsUser != nil:
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *e.runAsUser}
	case imageUID != nil:
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *imageUID}
	case imageUser != "":
		sc.RunAsUsername = imageUser
	}
	if e.runAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *e.runAsGroup}
	}
	if p := pod.Spec.SecurityContext; p != nil {
		sc.SupplementalGroups = supplementalGroups(p)
	}
	if o := e.seLinux; o != nil {
		sc.SelinuxOptions = &runtimeapi.SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
	}
	prof, err := m.seccompProfile(e.seccomp)
	if err != nil {
		return nil, err
	}
	sc.Seccomp = prof

	procMount := v1.DefaultProcMount
	if s := c.SecurityContext; s != nil {
		if s.Privileged != nil {
			sc.Privileged = *s.Privileged
		}
		if s.ReadOnlyRootFilesystem != nil {
			sc.ReadonlyRootfs = *s.ReadOnlyRootFilesystem
		}
		if s.AllowPrivilegeEscalation != nil {
			sc.NoNewPrivs = !*s.AllowPrivilegeEscalation
		}
		if caps := s.Capabilities; caps != nil {
			sc.Capabilities = &runtimeapi.Capability{}
			for _, a := range caps.Add {
				sc.Capabilities.AddCapabilities = append(sc.Capabilities.AddCapabilities, string(a))
			}
			for _, d := range caps.Drop {
				sc.Capabilities.DropCapabilities = append(sc.Capabilities.DropCapabilities, string(d))
			}
		}
		if s.ProcMount != nil {
			procMount = *s.ProcMount
		}
	}
	// Unmasked sends no list; the runtime then decides.
	if procMount == v1.DefaultProcMount {
		sc.MaskedPaths = append([]string(nil), defaultMaskedPaths...)
		sc.ReadonlyPaths = append([]string(nil), defaultReadonlyPaths...)
	}
	return sc, nil
}

// verifyNonRoot enforces runAsNonRoot against the user the container will run
// as (the kubelet's verifyRunAsNonRoot).
func verifyNonRoot(e effectiveSecurity, imageUID *int64, imageUser string) error {
	if e.runAsNonRoot == nil || !*e.runAsNonRoot {
		return nil
	}
	switch {
	case e.runAsUser != nil:
		if *e.runAsUser == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy")
		}
	case imageUID != nil && *imageUID == 0:
		return fmt.Errorf("container has runAsNonRoot and image will run as root")
	case imageUID == nil && imageUser != "":
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root", imageUser)
	}
	return nil
}

// seccompProfile converts an API profile; none means RuntimeDefault with
// SeccompDefault, Unconfined otherwise. Localhost profiles live under
// <root>/seccomp.
func (m *Manager) seccompProfile(p *v1.SeccompProfile) (*runtimeapi.SecurityProfile, error) {
	if p == nil {
		if m.seccompDefault {
			return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
		}
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	}
	switch p.Type {
	case v1.SeccompProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case v1.SeccompProfileTypeUnconfined:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	case v1.SeccompProfileTypeLocalhost:
		if p.LocalhostProfile == nil || *p.LocalhostProfile == "" {
			return nil, fmt.Errorf("seccompProfile: localhostProfile must be set for type Localhost")
		}
		rel := *p.LocalhostProfile
		if filepath.IsAbs(rel) || strings.Contains(rel, "..") {
			return nil, fmt.Errorf("seccompProfile: localhostProfile %q must be a relative path without '..'", rel)
		}
		return &runtimeapi.SecurityProfile{
			ProfileType:  runtimeapi.SecurityProfile_Localhost,
			LocalhostRef: filepath.Join(m.rootDir, "seccomp", rel),
		}, nil
	}
	return nil, fmt.Errorf("seccompProfile: type %q is not supported", p.Type)
}
