package downwardapi

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Context is what the downward API may read about a pod besides its spec.
type Context struct {
	PodIPs   []string
	HostIPs  []string
	NodeName string
	// Allocatable stands in for unset limits in resource fields.
	Allocatable v1.ResourceList
}

// FieldValue resolves a fieldRef (apiVersion v1). Volumes may also ask for the
// whole metadata.labels or metadata.annotations map, written one key="value"
// line per entry, sorted (FormatMap).
func FieldValue(pod *v1.Pod, f *v1.ObjectFieldSelector, c Context) (string, error) {
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
	case "metadata.labels":
		return FormatMap(pod.Labels), nil
	case "metadata.annotations":
		return FormatMap(pod.Annotations), nil
	case "spec.nodeName":
		if pod.Spec.NodeName != "" {
			return pod.Spec.NodeName, nil
		}
		return c.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		if len(c.HostIPs) > 0 {
			return c.HostIPs[0], nil
		}
		return "", nil
	case "status.hostIPs":
		return strings.Join(c.HostIPs, ","), nil
	case "status.podIP":
		if len(c.PodIPs) > 0 {
			return c.PodIPs[0], nil
		}
		return "", nil
	case "status.podIPs":
		return strings.Join(c.PodIPs, ","), nil
	}
	if k, ok := subscript(p, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(p, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	return "", fmt.Errorf("fieldPath %q is not supported", p)
}

// FormatMap writes a map as the kubelet does in downward API files: key="value"
// lines (values quoted as Go strings), sorted by key, no final newline.
func FormatMap(m map[string]string) string {
	var b []byte
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		if len(b) > 0 {
			b = append(b, '\n')
		}
		b = append(b, k...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, m[k])
	}
	return string(b)
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

// ResourceValue resolves limits.*/requests.* of the container named by f (self
// when f names none), divided by the divisor and rounded up; an unset limit is
// the node's allocatable. self may be nil for volume files, which must name
// their container.
func ResourceValue(pod *v1.Pod, self *v1.Container, f *v1.ResourceFieldSelector, allocatable v1.ResourceList) (string, error) {
	c := self
	if f.ContainerName != "" && (self == nil || f.ContainerName != self.Name) {
		if c = container(pod, f.ContainerName); c == nil {
			return "", fmt.Errorf("containerName %q: no such container", f.ContainerName)
		}
	}
	if c == nil {
		return "", fmt.Errorf("resource %q: containerName is required", f.Resource)
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
		var set bool
		if q, set = c.Resources.Requests[rn]; !set {
			// An unset request defaults to the limit, as the API server does.
			q = c.Resources.Limits[rn]
		}
	}
	divisor := f.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	switch {
	case rn == v1.ResourceCPU:
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	case rn == v1.ResourceMemory, rn == v1.ResourceEphemeralStorage, strings.HasPrefix(name, v1.ResourceHugePagesPrefix):
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
	}
	return "", fmt.Errorf("resource %q is not supported", f.Resource)
}

// container finds a container (regular or init) of the pod by name.
func container(pod *v1.Pod, name string) *v1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}
