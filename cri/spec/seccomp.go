package spec

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/seccomp"
)

// CRI fields that choose a security profile, and the values of the
// deprecated string fields.
const (
	seccompField     = "linux.security_context.seccomp"
	seccompPathField = "linux.security_context.seccomp_profile_path"
	apparmorField    = "linux.security_context.apparmor"
	apparmorOldField = "linux.security_context.apparmor_profile"

	profileRuntimeDefault = "runtime/default"
	profileDockerDefault  = "docker/default"
	profileUnconfined     = "unconfined"
	profileLocalhost      = "localhost/"
)

// profileRequest is a SecurityProfile with the CRI fields it came from, so
// errors can name them.
type profileRequest struct {
	*runtime.SecurityProfile
	typeField, refField string
}

// securityProfile returns what the request asks for: the structured field if
// set, else the deprecated string ("runtime/default", "docker/default",
// "unconfined", "localhost/<ref>"). nil means nothing was asked for.
func securityProfile(structured *runtime.SecurityProfile, field, legacy, legacyField string) (*profileRequest, error) {
	if structured != nil {
		r := &profileRequest{structured, field + ".profile_type", field + ".localhost_ref"}
		switch t := structured.GetProfileType(); t {
		case runtime.SecurityProfile_RuntimeDefault, runtime.SecurityProfile_Unconfined, runtime.SecurityProfile_Localhost:
		default:
			return nil, fieldErr(r.typeField, "unknown profile type %d", t)
		}
		if structured.GetProfileType() != runtime.SecurityProfile_Localhost && structured.GetLocalhostRef() != "" {
			return nil, fieldErr(r.refField, "is only valid with profile_type Localhost, not %s", structured.GetProfileType())
		}
		return r, nil
	}
	req := func(t runtime.SecurityProfile_ProfileType, ref string) *profileRequest {
		return &profileRequest{&runtime.SecurityProfile{ProfileType: t, LocalhostRef: ref}, legacyField, legacyField}
	}
	switch {
	case legacy == "":
		return nil, nil
	case legacy == profileRuntimeDefault || legacy == profileDockerDefault:
		return req(runtime.SecurityProfile_RuntimeDefault, ""), nil
	case legacy == profileUnconfined:
		return req(runtime.SecurityProfile_Unconfined, ""), nil
	case strings.HasPrefix(legacy, profileLocalhost):
		return req(runtime.SecurityProfile_Localhost, strings.TrimPrefix(legacy, profileLocalhost)), nil
	}
	return nil, fieldErr(legacyField, "%q: want %s, %s, %s or %s<profile>", legacy,
		profileRuntimeDefault, profileDockerDefault, profileUnconfined, profileLocalhost)
}

// setSeccomp chooses the container's seccomp filter, as containerd does:
//   - nothing asked for, or Unconfined: no filter. The kubelet sends
//     Unconfined unless the pod asks for a profile or it runs with
//     seccompDefault.
//   - RuntimeDefault: the runtime's default profile (package seccomp),
//     resolved for the container's capabilities.
//   - Localhost: the profile file named by localhost_ref (an absolute path),
//     in moby's or the runtime-spec's format (it is still loaded and checked,
//     so a bad reference is an error even for a privileged container).
//
// A privileged container runs without any filter, whatever it asks for, as in
// containerd, CRI-O and Docker (critest checks it).
func setSeccomp(s *specs.Spec, in Input) error {
	sc := in.Config.GetLinux().GetSecurityContext()
	//lint:ignore SA1019 the deprecated field is still sent by old kubelets
	req, err := securityProfile(sc.GetSeccomp(), seccompField, sc.GetSeccompProfilePath(), seccompPathField)
	if err != nil || req == nil {
		return err
	}
	target := seccomp.Target{Capabilities: s.Process.Capabilities.Bounding, Kernel: in.Host.Kernel}
	switch req.GetProfileType() {
	case runtime.SecurityProfile_RuntimeDefault:
		if sc.GetPrivileged() {
			note(in, "seccomp RuntimeDefault is not applied to privileged container %s", in.ID)
			return nil
		}
		s.Linux.Seccomp = seccomp.Default(target)
	case runtime.SecurityProfile_Localhost:
		path := strings.TrimPrefix(req.GetLocalhostRef(), profileLocalhost)
		if !filepath.IsAbs(path) {
			return fieldErr(req.refField, "seccomp profile %q is not an absolute path", path)
		}
		p, err := seccomp.Load(path)
		if err != nil {
			return &FieldError{Field: req.refField, Err: err}
		}
		f, err := p.Resolve(target)
		if err != nil {
			return &FieldError{Field: req.refField, Err: fmt.Errorf("seccomp profile %s: %w", path, err)}
		}
		if sc.GetPrivileged() {
			note(in, "seccomp profile %s is not applied to privileged container %s", path, in.ID)
			return nil
		}
		s.Linux.Seccomp = f
	}
	return nil
}
