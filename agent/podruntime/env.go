package podruntime

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/nodekit-dev/nodekit/internal/expansion"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// envVar is one environment variable of a container, in order.
type envVar struct{ name, value string }

// envContext is what the downward API may read about a pod besides its spec.
type envContext struct {
	podIP    string
	podIPs   []string
	hostIPs  []string
	nodeName string
	// allocatable stands in for unset limits in resourceFieldRef.
	allocatable v1.ResourceList
}

// containerEnv computes a container's environment like the kubelet's
// makeEnvironmentVariables: envFrom first, then env in order; literal values
// may reference earlier variables as $(NAME). ConfigMap and Secret references
// cannot be resolved without an API server: an optional one is skipped, a
// required one is an error (CreateContainerConfigError).
func containerEnv(pod *v1.Pod, c *v1.Container, ec envContext) ([]envVar, error) {
	var out []envVar
	index := map[string]int{}
	set := func(name, value string) {
		if i, ok := index[name]; ok {
			out[i].value = value
			return
		}
		index[name] = len(out)
		out = append(out, envVar{name, value})
	}
	lookup := func(name string) (string, bool) {
		if i, ok := index[name]; ok {
			return out[i].value, true
		}
		return "", false
	}

	for i, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			if from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional {
				continue
			}
			return nil, fmt.Errorf("envFrom[%d].configMapRef: configmap %q not found: no API server", i, from.ConfigMapRef.Name)
		case from.SecretRef != nil:
			if from.SecretRef.Optional != nil && *from.SecretRef.Optional {
				continue
			}
			return nil, fmt.Errorf("envFrom[%d].secretRef: secret %q not found: no API server", i, from.SecretRef.Name)
		}
	}

	for i, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expansion.Expand(e.Value, lookup))
			continue
		}
		src := e.ValueFrom
		switch {
		case src.FieldRef != nil:
			v, err := fieldRefValue(pod, src.FieldRef, ec)
			if err != nil {
				return nil, fmt.Errorf("env[%d] %s: valueFrom.fieldRef: %w", i, e.Name, err)
			}
			set(e.Name, v)
		case src.ResourceFieldRef != nil:
			v, err := resourceFieldRefValue(pod, c, src.ResourceFieldRef, ec.allocatable)
			if err != nil {
				return nil, fmt.Errorf("env[%d] %s: valueFrom.resourceFieldRef: %w", i, e.Name, err)
			}
			set(e.Name, v)
		case src.ConfigMapKeyRef != nil:
			if src.ConfigMapKeyRef.Optional != nil && *src.ConfigMapKeyRef.Optional {
				continue
			}
			return nil, fmt.Errorf("env[%d] %s: valueFrom.configMapKeyRef: configmap %q not found: no API server", i, e.Name, src.ConfigMapKeyRef.Name)
		case src.SecretKeyRef != nil:
			if src.SecretKeyRef.Optional != nil && *src.SecretKeyRef.Optional {
				continue
			}
			return nil, fmt.Errorf("env[%d] %s: valueFrom.secretKeyRef: secret %q not found: no API server", i, e.Name, src.SecretKeyRef.Name)
		default:
			return nil, fmt.Errorf("env[%d] %s: valueFrom: unsupported source", i, e.Name)
		}
	}
	return out, nil
}

// fieldRefValue resolves a downward API field of the pod.
func fieldRefValue(pod *v1.Pod, f *v1.ObjectFieldSelector, ec envContext) (string, error) {
	if f.APIVersion != "" && f.APIVersion != "v1" {
		return "", fmt.Errorf("apiVersion %q: only v1 is supported", f.APIVersion)
	}
	p := f.FieldPath
	switch p {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		if pod.Spec.NodeName != "" {
			return pod.Spec.NodeName, nil
		}
		return ec.nodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		if len(ec.hostIPs) > 0 {
			return ec.hostIPs[0], nil
		}
		return "", nil
	case "status.hostIPs":
		return strings.Join(ec.hostIPs, ","), nil
	case "status.podIP":
		return ec.podIP, nil
	case "status.podIPs":
		return strings.Join(ec.podIPs, ","), nil
	}
	if k, ok := subscript(p, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(p, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	return "", fmt.Errorf("fieldPath %q is not supported", p)
}

// subscript parses prefix['key'] (or prefix["key"]).
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"[")
	if !ok || !strings.HasSuffix(rest, "]") || len(rest) < 3 {
		return "", false
	}
	rest = rest[:len(rest)-1]
	q := rest[0]
	if (q != '\'' && q != '"') || rest[len(rest)-1] != q || len(rest) < 2 {
		return "", false
	}
	return rest[1 : len(rest)-1], true
}

// resourceFieldRefValue resolves limits.*/requests.* of a container, divided
// by the divisor and rounded up; an unset limit is the node's allocatable.
func resourceFieldRefValue(pod *v1.Pod, self *v1.Container, f *v1.ResourceFieldSelector, allocatable v1.ResourceList) (string, error) {
	c := self
	if f.ContainerName != "" && f.ContainerName != self.Name {
		if c = containerSpec(pod, f.ContainerName); c == nil {
			return "", fmt.Errorf("containerName %q: no such container", f.ContainerName)
		}
	}
	kind, name, ok := strings.Cut(f.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("resource %q is not supported", f.Resource)
	}
	rn := v1.ResourceName(name)
	var q resource.Quantity
	if kind == "limits" {
		var set bool
		if q, set = c.Resources.Limits[rn]; !set {
			q = allocatable[rn]
		}
	} else {
		q = effectiveRequests(c)[rn]
	}
	divisor := f.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	switch rn {
	case v1.ResourceCPU:
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	case v1.ResourceMemory, v1.ResourceEphemeralStorage:
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
	}
	if strings.HasPrefix(name, v1.ResourceHugePagesPrefix) {
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
	}
	return "", fmt.Errorf("resource %q is not supported", f.Resource)
}

// expandAll expands $(NAME) references to env in each of l.
func expandAll(l []string, env []envVar) []string {
	if l == nil {
		return nil
	}
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.name] = e.value
	}
	lookup := expansion.Map(m)
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = expansion.Expand(s, lookup)
	}
	return out
}
