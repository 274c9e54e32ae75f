package podsource

import (
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validatePod checks a defaulted pod with the API server's rules
// (k8s.io/kubernetes pkg/apis/core/validation) for what a node agent relies
// on. name is the manifest's own metadata.name, before the node suffix.
func validatePod(pod *v1.Pod, name string) field.ErrorList {
	meta := field.NewPath("metadata")
	var errs field.ErrorList
	switch {
	case name == "":
		errs = append(errs, field.Required(meta.Child("name"), "name is required"))
	default:
		errs = append(errs, strs(meta.Child("name"), name, validation.IsDNS1123Subdomain(name))...)
	}
	if ns := pod.Namespace; ns != "" {
		errs = append(errs, strs(meta.Child("namespace"), ns, validation.IsDNS1123Label(ns))...)
	}
	errs = append(errs, metavalidation.ValidateLabels(pod.Labels, meta.Child("labels"))...)
	errs = append(errs, apivalidation.ValidateAnnotations(pod.Annotations, meta.Child("annotations"))...)
	return append(errs, validateSpec(&pod.Spec, field.NewPath("spec"))...)
}

func validateSpec(spec *v1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	volumes, vErrs := validateVolumes(spec.Volumes, p.Child("volumes"))
	errs = append(errs, vErrs...)

	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), "must have at least one container"))
	}
	names := map[string]bool{}
	for i := range spec.InitContainers {
		errs = append(errs, validateContainer(&spec.InitContainers[i], true, p.Child("initContainers").Index(i), names, volumes)...)
	}
	for i := range spec.Containers {
		errs = append(errs, validateContainer(&spec.Containers[i], false, p.Child("containers").Index(i), names, volumes)...)
	}
	if len(spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(p.Child("ephemeralContainers"), "cannot be set on create"))
	}
	errs = append(errs, validateHostPorts(spec, p)...)

	errs = append(errs, oneOf(p.Child("restartPolicy"), spec.RestartPolicy,
		v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever)...)
	errs = append(errs, oneOf(p.Child("dnsPolicy"), spec.DNSPolicy,
		v1.DNSClusterFirst, v1.DNSClusterFirstWithHostNet, v1.DNSDefault, v1.DNSNone)...)
	if spec.DNSPolicy == v1.DNSNone && (spec.DNSConfig == nil || len(spec.DNSConfig.Nameservers) == 0) {
		errs = append(errs, field.Required(p.Child("dnsConfig", "nameservers"), "must provide at least one DNS nameserver when dnsPolicy is None"))
	}
	if g := spec.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *g, "must be greater than or equal to 0"))
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && *d < 1 {
		errs = append(errs, field.Invalid(p.Child("activeDeadlineSeconds"), *d, "must be greater than or equal to 1"))
	}
	if h := spec.Hostname; h != "" {
		errs = append(errs, strs(p.Child("hostname"), h, validation.IsDNS1123Label(h))...)
	}
	if s := spec.Subdomain; s != "" {
		errs = append(errs, strs(p.Child("subdomain"), s, validation.IsDNS1123Label(s))...)
	}
	return errs
}

// validateContainer checks one init or app container. names collects the
// container names seen so far (init and app containers share one space).
func validateContainer(c *v1.Container, init bool, p *field.Path, names map[string]bool, volumes map[string]bool) field.ErrorList {
	var errs field.ErrorList
	switch {
	case c.Name == "":
		errs = append(errs, field.Required(p.Child("name"), ""))
	case names[c.Name]:
		errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
	default:
		errs = append(errs, strs(p.Child("name"), c.Name, validation.IsDNS1123Label(c.Name))...)
	}
	names[c.Name] = true

	switch {
	case c.Image == "":
		errs = append(errs, field.Required(p.Child("image"), ""))
	case strings.TrimSpace(c.Image) != c.Image:
		errs = append(errs, field.Invalid(p.Child("image"), c.Image, "must not have leading or trailing whitespace"))
	}
	errs = append(errs, oneOf(p.Child("imagePullPolicy"), c.ImagePullPolicy, v1.PullAlways, v1.PullIfNotPresent, v1.PullNever)...)
	errs = append(errs, oneOf(p.Child("terminationMessagePolicy"), c.TerminationMessagePolicy,
		v1.TerminationMessageReadFile, v1.TerminationMessageFallbackToLogsOnError)...)

	// A container's own restartPolicy and restartPolicyRules (ContainerRestartRules,
	// on by default since Kubernetes 1.35); an init container with Always is a
	// sidecar.
	sidecar := init && c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
	errs = append(errs, validateRestartPolicy(c, p)...)
	if init && !sidecar {
		for _, f := range []struct {
			name string
			set  bool
		}{{"lifecycle", c.Lifecycle != nil}, {"livenessProbe", c.LivenessProbe != nil},
			{"readinessProbe", c.ReadinessProbe != nil}, {"startupProbe", c.StartupProbe != nil}} {
			if f.set {
				errs = append(errs, field.Forbidden(p.Child(f.name), "may not be set for init containers without restartPolicy=Always"))
			}
		}
	}

	errs = append(errs, validatePorts(c.Ports, p.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, p.Child("env"))...)
	errs = append(errs, validateMounts(c.VolumeMounts, p.Child("volumeMounts"), volumes)...)
	errs = append(errs, validateResources(&c.Resources, p.Child("resources"))...)
	errs = append(errs, validateProbe(c.LivenessProbe, p.Child("livenessProbe"), true)...)
	errs = append(errs, validateProbe(c.ReadinessProbe, p.Child("readinessProbe"), false)...)
	errs = append(errs, validateProbe(c.StartupProbe, p.Child("startupProbe"), true)...)
	if c.Lifecycle != nil {
		errs = append(errs, validateLifecycleHandler(c.Lifecycle.PostStart, p.Child("lifecycle", "postStart"))...)
		errs = append(errs, validateLifecycleHandler(c.Lifecycle.PreStop, p.Child("lifecycle", "preStop"))...)
	}
	return errs
}

var supportedProtocols = []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP}

func validatePorts(ports []v1.ContainerPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, port := range ports {
		ip := p.Index(i)
		if port.Name != "" {
			if names[port.Name] {
				errs = append(errs, field.Duplicate(ip.Child("name"), port.Name))
			} else {
				errs = append(errs, strs(ip.Child("name"), port.Name, validation.IsValidPortName(port.Name))...)
			}
			names[port.Name] = true
		}
		if port.ContainerPort == 0 {
			errs = append(errs, field.Required(ip.Child("containerPort"), ""))
		} else {
			errs = append(errs, strs(ip.Child("containerPort"), port.ContainerPort, validation.IsValidPortNum(int(port.ContainerPort)))...)
		}
		if port.HostPort != 0 {
			errs = append(errs, strs(ip.Child("hostPort"), port.HostPort, validation.IsValidPortNum(int(port.HostPort)))...)
		}
		errs = append(errs, oneOf(ip.Child("protocol"), port.Protocol, supportedProtocols...)...)
	}
	return errs
}

// validateHostPorts rejects a host port used twice in the pod (same protocol
// and host IP), and host ports that differ from the container port on the
// host network.
func validateHostPorts(spec *v1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	used := map[string]bool{}
	check := func(cs []v1.Container, cp *field.Path) {
		for i, c := range cs {
			for j, port := range c.Ports {
				pp := cp.Index(i).Child("ports").Index(j)
				if spec.HostNetwork && port.HostPort != 0 && port.HostPort != port.ContainerPort {
					errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort, "must match `hostPort` when `hostNetwork` is true"))
				}
				if port.HostPort == 0 {
					continue
				}
				key := fmt.Sprintf("%s/%s/%d", port.Protocol, port.HostIP, port.HostPort)
				if used[key] {
					errs = append(errs, field.Duplicate(pp.Child("hostPort"), key))
				}
				used[key] = true
			}
		}
	}
	check(spec.InitContainers, p.Child("initContainers"))
	check(spec.Containers, p.Child("containers"))
	return errs
}

func validateEnv(env []v1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		ep := p.Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(ep.Child("name"), ""))
		} else {
			errs = append(errs, strs(ep.Child("name"), e.Name, validation.IsRelaxedEnvVarName(e.Name))...)
		}
		if e.ValueFrom == nil {
			continue
		}
		vp := ep.Child("valueFrom")
		var set []string
		f := e.ValueFrom
		if f.FieldRef != nil {
			set = append(set, "fieldRef")
			if f.FieldRef.FieldPath == "" {
				errs = append(errs, field.Required(vp.Child("fieldRef", "fieldPath"), ""))
			}
		}
		if f.ResourceFieldRef != nil {
			set = append(set, "resourceFieldRef")
			if f.ResourceFieldRef.Resource == "" {
				errs = append(errs, field.Required(vp.Child("resourceFieldRef", "resource"), ""))
			}
		}
		if f.ConfigMapKeyRef != nil {
			set = append(set, "configMapKeyRef")
		}
		if f.SecretKeyRef != nil {
			set = append(set, "secretKeyRef")
		}
		if f.FileKeyRef != nil {
			set = append(set, "fileKeyRef")
		}
		switch {
		case len(set) == 0:
			errs = append(errs, field.Invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`"))
		case len(set) > 1:
			errs = append(errs, field.Invalid(vp, "", "may not have more than one field specified at a time"))
		case e.Value != "":
			errs = append(errs, field.Invalid(vp, "", "may not be specified when `value` is not empty"))
		}
	}
	return errs
}

func validateMounts(mounts []v1.VolumeMount, p *field.Path, volumes map[string]bool) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	for i, m := range mounts {
		mp := p.Index(i)
		switch {
		case m.Name == "":
			errs = append(errs, field.Required(mp.Child("name"), ""))
		case !volumes[m.Name]:
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		case paths[m.MountPath]:
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths[m.MountPath] = true
		if m.SubPath != "" {
			errs = append(errs, validateRelativePath(m.SubPath, mp.Child("subPath"))...)
		}
		if m.SubPathExpr != "" {
			if m.SubPath != "" {
				errs = append(errs, field.Invalid(mp.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			errs = append(errs, validateRelativePath(m.SubPathExpr, mp.Child("subPathExpr"))...)
		}
	}
	return errs
}

func validateRelativePath(s string, p *field.Path) field.ErrorList {
	if path.IsAbs(s) {
		return field.ErrorList{field.Invalid(p, s, "must be a relative path")}
	}
	for _, part := range strings.Split(s, "/") {
		if part == ".." {
			return field.ErrorList{field.Invalid(p, s, "must not contain '..'")}
		}
	}
	return nil
}

// validateResources checks resource names, that quantities are not
// negative and that requests do not exceed limits. Unparsable quantities are
// caught while decoding (see checkQuantities).
func validateResources(r *v1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, l := range []struct {
		name string
		list v1.ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for name, q := range l.list {
			rp := p.Child(l.name).Key(string(name))
			// A request named as a limit had its name checked as a limit.
			if _, inLimits := r.Limits[name]; l.name == "limits" || !inLimits {
				errs = append(errs, validateResourceName(string(name), rp)...)
			}
			if q.Sign() < 0 {
				errs = append(errs, field.Invalid(rp, q.String(), "must be greater than or equal to 0"))
			}
		}
	}
	for name, req := range r.Requests {
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(p.Child("requests").Key(string(name)), req.String(),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		}
	}
	return errs
}

func validateResourceName(name string, p *field.Path) field.ErrorList {
	if strings.Contains(name, "/") {
		return strs(p, name, validation.IsQualifiedName(name))
	}
	switch {
	case name == string(v1.ResourceCPU), name == string(v1.ResourceMemory), name == string(v1.ResourceEphemeralStorage),
		strings.HasPrefix(name, v1.ResourceHugePagesPrefix):
		return nil
	}
	return field.ErrorList{field.Invalid(p, name, "must be a standard resource type or fully qualified")}
}

// probeHandlers names the handlers set in h.
func probeHandlers(h *v1.ProbeHandler) []string {
	var set []string
	if h.Exec != nil {
		set = append(set, "exec")
	}
	if h.HTTPGet != nil {
		set = append(set, "httpGet")
	}
	if h.TCPSocket != nil {
		set = append(set, "tcpSocket")
	}
	if h.GRPC != nil {
		set = append(set, "grpc")
	}
	return set
}

// validateProbe checks a probe; successOne says successThreshold must be 1
// (liveness and startup probes). Readiness probes may not set their own
// terminationGracePeriodSeconds.
func validateProbe(pr *v1.Probe, p *field.Path, successOne bool) field.ErrorList {
	if pr == nil {
		return nil
	}
	var errs field.ErrorList
	errs = append(errs, validateHandlers(probeHandlers(&pr.ProbeHandler), p)...)
	if e := pr.Exec; e != nil && len(e.Command) == 0 {
		errs = append(errs, field.Required(p.Child("exec", "command"), ""))
	}
	errs = append(errs, validateHTTPGet(pr.HTTPGet, p.Child("httpGet"))...)
	if t := pr.TCPSocket; t != nil {
		errs = append(errs, validatePortNumOrName(t.Port, p.Child("tcpSocket", "port"))...)
	}
	if g := pr.GRPC; g != nil {
		errs = append(errs, strs(p.Child("grpc", "port"), g.Port, validation.IsValidPortNum(int(g.Port)))...)
	}
	for _, n := range []struct {
		name string
		v    int32
	}{{"initialDelaySeconds", pr.InitialDelaySeconds}, {"timeoutSeconds", pr.TimeoutSeconds},
		{"periodSeconds", pr.PeriodSeconds}, {"successThreshold", pr.SuccessThreshold}, {"failureThreshold", pr.FailureThreshold}} {
		if n.v < 0 {
			errs = append(errs, field.Invalid(p.Child(n.name), n.v, "must be greater than or equal to 0"))
		}
	}
	if successOne && pr.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(p.Child("successThreshold"), pr.SuccessThreshold, "must be 1"))
	}
	if g := pr.TerminationGracePeriodSeconds; g != nil {
		switch {
		case !successOne: // readiness
			errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *g, "must not be set for readinessProbes"))
		case *g <= 0:
			errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *g, "must be greater than 0"))
		}
	}
	return errs
}

func validateLifecycleHandler(h *v1.LifecycleHandler, p *field.Path) field.ErrorList {
	if h == nil {
		return nil
	}
	var set []string
	var errs field.ErrorList
	if h.Exec != nil {
		set = append(set, "exec")
		if len(h.Exec.Command) == 0 {
			errs = append(errs, field.Required(p.Child("exec", "command"), ""))
		}
	}
	if h.HTTPGet != nil {
		set = append(set, "httpGet")
		errs = append(errs, validateHTTPGet(h.HTTPGet, p.Child("httpGet"))...)
	}
	if h.TCPSocket != nil {
		set = append(set, "tcpSocket")
		errs = append(errs, validatePortNumOrName(h.TCPSocket.Port, p.Child("tcpSocket", "port"))...)
	}
	if h.Sleep != nil {
		set = append(set, "sleep")
		if h.Sleep.Seconds < 0 {
			errs = append(errs, field.Invalid(p.Child("sleep", "seconds"), h.Sleep.Seconds, "must be greater than or equal to 0"))
		}
	}
	return append(validateHandlers(set, p), errs...)
}

func validateHandlers(set []string, p *field.Path) field.ErrorList {
	switch len(set) {
	case 0:
		return field.ErrorList{field.Required(p, "must specify a handler type")}
	case 1:
		return nil
	}
	return field.ErrorList{field.Forbidden(p.Child(set[1]), "may not specify more than 1 handler type")}
}

func validateHTTPGet(h *v1.HTTPGetAction, p *field.Path) field.ErrorList {
	if h == nil {
		return nil
	}
	errs := validatePortNumOrName(h.Port, p.Child("port"))
	errs = append(errs, oneOf(p.Child("scheme"), h.Scheme, v1.URISchemeHTTP, v1.URISchemeHTTPS)...)
	for i, hd := range h.HTTPHeaders {
		errs = append(errs, strs(p.Child("httpHeaders").Index(i).Child("name"), hd.Name, validation.IsHTTPHeaderName(hd.Name))...)
	}
	return errs
}

func validatePortNumOrName(port intstr.IntOrString, p *field.Path) field.ErrorList {
	if port.Type == intstr.Int {
		return strs(p, port.IntValue(), validation.IsValidPortNum(port.IntValue()))
	}
	if port.StrVal == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return strs(p, port.StrVal, validation.IsValidPortName(port.StrVal))
}

// validateVolumes checks the pod's volumes and returns the set of their
// names, which volume mounts must refer to.
func validateVolumes(vols []v1.Volume, p *field.Path) (map[string]bool, field.ErrorList) {
	var errs field.ErrorList
	names := map[string]bool{}
	for i := range vols {
		v := &vols[i]
		vp := p.Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(vp.Child("name"), ""))
		case names[v.Name]:
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		default:
			errs = append(errs, strs(vp.Child("name"), v.Name, validation.IsDNS1123Label(v.Name))...)
		}
		names[v.Name] = true
		switch srcs := volumeSources(&v.VolumeSource); len(srcs) {
		case 0:
			errs = append(errs, field.Required(vp, "must specify a volume type"))
		case 1:
		default:
			errs = append(errs, field.Forbidden(vp.Child(srcs[1]), "may not specify more than 1 volume type"))
		}
		switch {
		case v.HostPath != nil:
			if v.HostPath.Path == "" {
				errs = append(errs, field.Required(vp.Child("hostPath", "path"), ""))
			}
			if t := v.HostPath.Type; t != nil {
				errs = append(errs, oneOf(vp.Child("hostPath", "type"), *t, v1.HostPathUnset, v1.HostPathDirectoryOrCreate,
					v1.HostPathDirectory, v1.HostPathFileOrCreate, v1.HostPathFile, v1.HostPathSocket,
					v1.HostPathCharDev, v1.HostPathBlockDev)...)
			}
		case v.EmptyDir != nil:
			m := v.EmptyDir.Medium
			if m != v1.StorageMediumDefault && m != v1.StorageMediumMemory && !strings.HasPrefix(string(m), string(v1.StorageMediumHugePages)) {
				errs = append(errs, field.NotSupported(vp.Child("emptyDir", "medium"), m,
					[]v1.StorageMedium{v1.StorageMediumDefault, v1.StorageMediumMemory, v1.StorageMediumHugePages}))
			}
			if s := v.EmptyDir.SizeLimit; s != nil && s.Sign() < 0 {
				errs = append(errs, field.Invalid(vp.Child("emptyDir", "sizeLimit"), s.String(), "must be greater than or equal to 0"))
			}
		case v.ConfigMap != nil:
			if v.ConfigMap.Name == "" {
				errs = append(errs, field.Required(vp.Child("configMap", "name"), ""))
			}
			errs = append(errs, validateMode(v.ConfigMap.DefaultMode, vp.Child("configMap", "defaultMode"))...)
			errs = append(errs, validateKeyToPaths(v.ConfigMap.Items, vp.Child("configMap", "items"))...)
		case v.Secret != nil:
			if v.Secret.SecretName == "" {
				errs = append(errs, field.Required(vp.Child("secret", "secretName"), ""))
			}
			errs = append(errs, validateMode(v.Secret.DefaultMode, vp.Child("secret", "defaultMode"))...)
			errs = append(errs, validateKeyToPaths(v.Secret.Items, vp.Child("secret", "items"))...)
		case v.DownwardAPI != nil:
			errs = append(errs, validateMode(v.DownwardAPI.DefaultMode, vp.Child("downwardAPI", "defaultMode"))...)
			errs = append(errs, validateDownwardAPIFiles(v.DownwardAPI.Items, vp.Child("downwardAPI", "items"))...)
		case v.Projected != nil:
			errs = append(errs, validateProjected(v.Projected, vp.Child("projected"))...)
		case v.Image != nil:
			if v.Image.Reference == "" {
				errs = append(errs, field.Required(vp.Child("image", "reference"), ""))
			}
			if pp := v.Image.PullPolicy; pp != "" {
				errs = append(errs, oneOf(vp.Child("image", "pullPolicy"), pp, v1.PullAlways, v1.PullIfNotPresent, v1.PullNever)...)
			}
		}
	}
	return names, errs
}

func validateKeyToPaths(items []v1.KeyToPath, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		if it.Key == "" {
			errs = append(errs, field.Required(p.Index(i).Child("key"), ""))
		} else {
			errs = append(errs, strs(p.Index(i).Child("key"), it.Key, validation.IsConfigMapKey(it.Key))...)
		}
		errs = append(errs, validateItemPath(it.Path, p.Index(i).Child("path"))...)
		errs = append(errs, validateMode(it.Mode, p.Index(i).Child("mode"))...)
	}
	return errs
}

// validateMode checks a file mode is within 0 and 0777, as the API server.
func validateMode(m *int32, p *field.Path) field.ErrorList {
	if m != nil && (*m < 0 || *m > 0o777) {
		return field.ErrorList{field.Invalid(p, *m, "must be a number between 0 and 0777 (octal), both inclusive")}
	}
	return nil
}

// downwardAPIVolumeFields are the fieldRef paths a downwardAPI volume file may
// use (besides labels['k'] and annotations['k']).
var downwardAPIVolumeFields = []string{"metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations"}

func validateDownwardAPIFiles(items []v1.DownwardAPIVolumeFile, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		errs = append(errs, validateItemPath(it.Path, ip.Child("path"))...)
		errs = append(errs, validateMode(it.Mode, ip.Child("mode"))...)
		switch {
		case it.FieldRef != nil && it.ResourceFieldRef != nil:
			errs = append(errs, field.Invalid(ip, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		case it.FieldRef != nil:
			fp := it.FieldRef.FieldPath
			if !slices.Contains(downwardAPIVolumeFields, fp) &&
				!strings.HasPrefix(fp, "metadata.labels[") && !strings.HasPrefix(fp, "metadata.annotations[") {
				errs = append(errs, field.NotSupported(ip.Child("fieldRef", "fieldPath"), fp, downwardAPIVolumeFields))
			}
		case it.ResourceFieldRef != nil:
			if it.ResourceFieldRef.ContainerName == "" {
				errs = append(errs, field.Required(ip.Child("resourceFieldRef", "containerName"), ""))
			}
			if r := it.ResourceFieldRef.Resource; !strings.HasPrefix(r, "limits.") && !strings.HasPrefix(r, "requests.") {
				errs = append(errs, field.Invalid(ip.Child("resourceFieldRef", "resource"), r, "must be limits.<resource> or requests.<resource>"))
			}
		default:
			errs = append(errs, field.Required(ip, "one of fieldRef and resourceFieldRef is required"))
		}
	}
	return errs
}

func validateProjected(pv *v1.ProjectedVolumeSource, p *field.Path) field.ErrorList {
	errs := validateMode(pv.DefaultMode, p.Child("defaultMode"))
	for i, s := range pv.Sources {
		sp := p.Child("sources").Index(i)
		n := 0
		if s.ConfigMap != nil {
			n++
			if s.ConfigMap.Name == "" {
				errs = append(errs, field.Required(sp.Child("configMap", "name"), ""))
			}
			errs = append(errs, validateKeyToPaths(s.ConfigMap.Items, sp.Child("configMap", "items"))...)
		}
		if s.Secret != nil {
			n++
			if s.Secret.Name == "" {
				errs = append(errs, field.Required(sp.Child("secret", "name"), ""))
			}
			errs = append(errs, validateKeyToPaths(s.Secret.Items, sp.Child("secret", "items"))...)
		}
		if s.DownwardAPI != nil {
			n++
			errs = append(errs, validateDownwardAPIFiles(s.DownwardAPI.Items, sp.Child("downwardAPI", "items"))...)
		}
		if s.ServiceAccountToken != nil {
			n++
			errs = append(errs, validateItemPath(s.ServiceAccountToken.Path, sp.Child("serviceAccountToken", "path"))...)
		}
		if s.ClusterTrustBundle != nil || s.PodCertificate != nil {
			n++
		}
		if n != 1 {
			errs = append(errs, field.Forbidden(sp, "must specify exactly one volume projection"))
		}
	}
	return errs
}

func validateItemPath(s string, p *field.Path) field.ErrorList {
	if s == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return validateRelativePath(s, p)
}

// volumeSources names (by JSON field) the sources set in a VolumeSource:
// every source is a pointer field, exactly one must be set.
func volumeSources(vs *v1.VolumeSource) []string {
	var set []string
	v := reflect.ValueOf(vs).Elem()
	t := v.Type()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			set = append(set, name)
		}
	}
	return set
}

// oneOf reports an unsupported (or missing) value of an enumerated field.
func oneOf[T ~string](p *field.Path, v T, valid ...T) field.ErrorList {
	for _, ok := range valid {
		if v == ok {
			return nil
		}
	}
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return field.ErrorList{field.NotSupported(p, v, valid)}
}

// strs turns the messages of an apimachinery validation.Is* check into one
// field error.
func strs(p *field.Path, value any, msgs []string) field.ErrorList {
	if len(msgs) == 0 {
		return nil
	}
	return field.ErrorList{field.Invalid(p, value, strings.Join(msgs, "; "))}
}

// validateRestartPolicy checks a container's restartPolicy and restartPolicyRules
// as the API server does.
func validateRestartPolicy(c *v1.Container, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.RestartPolicy == nil {
		if len(c.RestartPolicyRules) > 0 {
			errs = append(errs, field.Required(p.Child("restartPolicy"), "must specify restartPolicy when restart rules are used"))
		}
	} else {
		errs = append(errs, oneOf(p.Child("restartPolicy"), *c.RestartPolicy,
			v1.ContainerRestartPolicyAlways, v1.ContainerRestartPolicyOnFailure, v1.ContainerRestartPolicyNever)...)
	}
	if len(c.RestartPolicyRules) > 20 {
		errs = append(errs, field.TooMany(p.Child("restartPolicyRules"), len(c.RestartPolicyRules), 20))
	}
	for i, rule := range c.RestartPolicyRules {
		rp := p.Child("restartPolicyRules").Index(i)
		if rule.Action != v1.ContainerRestartRuleActionRestart {
			errs = append(errs, field.NotSupported(rp.Child("action"), rule.Action, []v1.ContainerRestartRuleAction{v1.ContainerRestartRuleActionRestart}))
		}
		if rule.ExitCodes == nil {
			errs = append(errs, field.Required(rp.Child("exitCodes"), "must be specified"))
			continue
		}
		errs = append(errs, oneOf(rp.Child("exitCodes", "operator"), rule.ExitCodes.Operator,
			v1.ContainerRestartRuleOnExitCodesOpIn, v1.ContainerRestartRuleOnExitCodesOpNotIn)...)
		if len(rule.ExitCodes.Values) > 255 {
			errs = append(errs, field.TooMany(rp.Child("exitCodes", "values"), len(rule.ExitCodes.Values), 255))
		}
	}
	return errs
}
