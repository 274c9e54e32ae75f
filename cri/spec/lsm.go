package spec

import (
	"bufio"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// appArmorProfiles lists the AppArmor profiles the kernel has loaded, one
// "name (mode)" per line. A variable for tests.
var appArmorProfiles = "/sys/kernel/security/apparmor/profiles"

// setAppArmor applies an AppArmor profile. On a node without AppArmor a
// request for RuntimeDefault or Unconfined is satisfied by doing nothing, but
// a Localhost profile cannot be: that is an error saying so. With AppArmor, a
// Localhost profile must be loaded; RuntimeDefault runs without a profile, as
// nodekit ships none yet (noted).
func setAppArmor(p *specs.Process, in Input) error {
	sc := in.Config.GetLinux().GetSecurityContext()
	//lint:ignore SA1019 the deprecated field is still sent by old kubelets
	req, err := securityProfile(sc.GetApparmor(), apparmorField, sc.GetApparmorProfile(), apparmorOldField)
	if err != nil || req == nil {
		return err
	}
	switch req.GetProfileType() {
	case runtime.SecurityProfile_RuntimeDefault:
		if in.Host.AppArmor && !sc.GetPrivileged() {
			note(in, "AppArmor RuntimeDefault: nodekit has no default AppArmor profile; container %s runs unconfined", in.ID)
		}
	case runtime.SecurityProfile_Localhost:
		name := strings.TrimPrefix(req.GetLocalhostRef(), profileLocalhost)
		switch {
		case name == "":
			return fieldErr(req.refField, "no AppArmor profile named")
		case !in.Host.AppArmor:
			return fieldErr(req.refField, "AppArmor is not enabled on this host, so profile %q cannot be applied", name)
		}
		if loaded, known := appArmorLoaded(name); known && !loaded {
			return fieldErr(req.refField, "AppArmor profile %q is not loaded (see %s)", name, appArmorProfiles)
		}
		p.ApparmorProfile = name
	}
	return nil
}

// appArmorLoaded reports whether the kernel has the profile name loaded;
// known is false when the list cannot be read.
func appArmorLoaded(name string) (loaded, known bool) {
	f, err := os.Open(appArmorProfiles)
	if err != nil {
		return false, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n, _, _ := strings.Cut(sc.Text(), " (")
		if n == name {
			return true, true
		}
	}
	return false, sc.Err() == nil
}

// checkSELinux handles SELinux options (the container's, else the pod's).
// Without SELinux on the node they cannot mean anything and are ignored
// (noted). With SELinux they would need labels this runtime does not
// compute, so they are refused rather than silently dropped.
func checkSELinux(in Input) error {
	field := "linux.security_context.selinux_options"
	opts := in.Config.GetLinux().GetSecurityContext().GetSelinuxOptions()
	if selinuxEmpty(opts) {
		field = "sandbox_config.linux.security_context.selinux_options"
		opts = in.Sandbox.GetLinux().GetSecurityContext().GetSelinuxOptions()
	}
	if selinuxEmpty(opts) {
		return nil
	}
	if !in.Host.SELinux {
		note(in, "SELinux options %s:%s:%s:%s of container %s ignored: SELinux is not enabled on this host",
			opts.GetUser(), opts.GetRole(), opts.GetType(), opts.GetLevel(), in.ID)
		return nil
	}
	return fieldErr(field, "SELinux labels are %v", errUnsupported)
}

func selinuxEmpty(o *runtime.SELinuxOption) bool {
	return o.GetUser() == "" && o.GetRole() == "" && o.GetType() == "" && o.GetLevel() == ""
}
