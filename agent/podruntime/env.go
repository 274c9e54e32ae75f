package podruntime

import (
	"context"
	"fmt"
	"maps"
	"slices"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/nodekit-dev/nodekit/internal/downwardapi"
	"github.com/nodekit-dev/nodekit/internal/expansion"
	"github.com/nodekit-dev/nodekit/objects"
)

// envVar is one environment variable of a container, in order.
type envVar struct{ name, value string }

// envContext is what the downward API may read about a pod besides its spec,
// and where its configMaps and secrets come from.
type envContext struct {
	podIP    string
	podIPs   []string
	hostIPs  []string
	nodeName string
	// allocatable stands in for unset limits in resourceFieldRef.
	allocatable v1.ResourceList
	// objects gives configMaps and secrets; nil: there are none.
	objects objects.Source
}

// containerEnv computes a container's environment like the kubelet's
// makeEnvironmentVariables: envFrom first (keys sorted, prefixed), then env in
// order; literal values may reference earlier variables as $(NAME). A missing
// configMap, secret or key is an error (CreateContainerConfigError) unless the
// reference is optional; the messages are the kubelet's.
func containerEnv(ctx context.Context, pod *v1.Pod, c *v1.Container, ec envContext) ([]envVar, error) {
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
	// Each object is read once per container, as the kubelet caches them.
	configMaps := map[string]*v1.ConfigMap{}
	secrets := map[string]*v1.Secret{}
	configMap := func(name string) (*v1.ConfigMap, error) {
		if cm, ok := configMaps[name]; ok {
			return cm, nil
		}
		if ec.objects == nil {
			return nil, apierrors.NewNotFound(v1.Resource("configmaps"), name)
		}
		cm, err := ec.objects.ConfigMap(ctx, pod.Namespace, name)
		if err != nil {
			return nil, err
		}
		configMaps[name] = cm
		return cm, nil
	}
	secret := func(name string) (*v1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		if ec.objects == nil {
			return nil, apierrors.NewNotFound(v1.Resource("secrets"), name)
		}
		s, err := ec.objects.Secret(ctx, pod.Namespace, name)
		if err != nil {
			return nil, err
		}
		secrets[name] = s
		return s, nil
	}
	skip := func(err error, optional *bool) bool {
		return apierrors.IsNotFound(err) && optional != nil && *optional
	}

	for i, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := configMap(from.ConfigMapRef.Name)
			if skip(err, from.ConfigMapRef.Optional) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("envFrom[%d].configMapRef: %w", i, err)
			}
			for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
				set(from.Prefix+k, cm.Data[k])
			}
		case from.SecretRef != nil:
			s, err := secret(from.SecretRef.Name)
			if skip(err, from.SecretRef.Optional) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("envFrom[%d].secretRef: %w", i, err)
			}
			for _, k := range slices.Sorted(maps.Keys(s.Data)) {
				set(from.Prefix+k, string(s.Data[k]))
			}
		}
	}

	dc := downwardapi.Context{PodIPs: ec.podIPs, HostIPs: ec.hostIPs, NodeName: ec.nodeName, Allocatable: ec.allocatable}
	if len(dc.PodIPs) == 0 && ec.podIP != "" {
		dc.PodIPs = []string{ec.podIP}
	}
	for i, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expansion.Expand(e.Value, lookup))
			continue
		}
		src := e.ValueFrom
		switch {
		case src.FieldRef != nil:
			if p := src.FieldRef.FieldPath; p == "metadata.labels" || p == "metadata.annotations" {
				return nil, fmt.Errorf("env[%d] %s: valueFrom.fieldRef: fieldPath %q is not supported in env", i, e.Name, p)
			}
			v, err := downwardapi.FieldValue(pod, src.FieldRef, dc)
			if err != nil {
				return nil, fmt.Errorf("env[%d] %s: valueFrom.fieldRef: %w", i, e.Name, err)
			}
			set(e.Name, v)
		case src.ResourceFieldRef != nil:
			v, err := downwardapi.ResourceValue(pod, c, src.ResourceFieldRef, ec.allocatable)
			if err != nil {
				return nil, fmt.Errorf("env[%d] %s: valueFrom.resourceFieldRef: %w", i, e.Name, err)
			}
			set(e.Name, v)
		case src.ConfigMapKeyRef != nil:
			ref := src.ConfigMapKeyRef
			optional := ref.Optional != nil && *ref.Optional
			cm, err := configMap(ref.Name)
			if skip(err, ref.Optional) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("env[%d] %s: valueFrom.configMapKeyRef: %w", i, e.Name, err)
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if optional {
					continue
				}
				return nil, fmt.Errorf("env[%d] %s: valueFrom.configMapKeyRef: couldn't find key %s in ConfigMap %s/%s", i, e.Name, ref.Key, pod.Namespace, ref.Name)
			}
			set(e.Name, v)
		case src.SecretKeyRef != nil:
			ref := src.SecretKeyRef
			optional := ref.Optional != nil && *ref.Optional
			s, err := secret(ref.Name)
			if skip(err, ref.Optional) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("env[%d] %s: valueFrom.secretKeyRef: %w", i, e.Name, err)
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				if optional {
					continue
				}
				return nil, fmt.Errorf("env[%d] %s: valueFrom.secretKeyRef: couldn't find key %s in Secret %s/%s", i, e.Name, ref.Key, pod.Namespace, ref.Name)
			}
			set(e.Name, string(v))
		default:
			return nil, fmt.Errorf("env[%d] %s: valueFrom: unsupported source", i, e.Name)
		}
	}
	return out, nil
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
