package volumes

import (
	"context"
	"fmt"
	"io/fs"
	"path"

	v1 "k8s.io/api/core/v1"

	"github.com/nodekit-dev/nodekit/internal/downwardapi"
	"github.com/nodekit-dev/nodekit/volumes/atomicwriter"
)

// defaultFileMode is the API's default for defaultMode.
const defaultFileMode = 0o644

// fileMode turns an API mode into permission bits, refusing what is out of
// range (the API allows 0 to 0777).
func fileMode(item, def *int32) (fs.FileMode, error) {
	m := int32(defaultFileMode)
	switch {
	case item != nil:
		m = *item
	case def != nil:
		m = *def
	}
	if m < 0 || m > 0o777 {
		return 0, fmt.Errorf("mode %#o is out of range: must be between 0 and 0777", m)
	}
	return fs.FileMode(m), nil
}

// keysPayload maps the keys of an object to files: every key under its own
// name without items, else each item's key to its path (a missing key is an
// error unless the source is optional).
func keysPayload(kind, ns, name string, data map[string][]byte, items []v1.KeyToPath, defaultMode *int32, optional *bool) (map[string]atomicwriter.File, error) {
	out := make(map[string]atomicwriter.File, len(data))
	if len(items) == 0 {
		mode, err := fileMode(nil, defaultMode)
		if err != nil {
			return nil, fmt.Errorf("defaultMode: %w", err)
		}
		for k, v := range data {
			out[k] = atomicwriter.File{Data: v, Mode: mode}
		}
		return out, nil
	}
	for i, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			// The kubelet's messages.
			if kind == "ConfigMap" {
				return nil, fmt.Errorf("configmap %s/%s references non-existent config key: %s", ns, name, it.Key)
			}
			return nil, fmt.Errorf("secret %s/%s references non-existent secret key: %s", ns, name, it.Key)
		}
		mode, err := fileMode(it.Mode, defaultMode)
		if err != nil {
			return nil, fmt.Errorf("items[%d].mode: %w", i, err)
		}
		if err := validItemPath(it.Path); err != nil {
			return nil, fmt.Errorf("items[%d].path: %w", i, err)
		}
		out[it.Path] = atomicwriter.File{Data: v, Mode: mode}
	}
	return out, nil
}

// validItemPath refuses absolute paths and ".." elements (the writer refuses
// the rest).
func validItemPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty path")
	}
	if path.IsAbs(p) {
		return fmt.Errorf("%q must be a relative path", p)
	}
	for _, e := range splitPath(p) {
		if e == ".." {
			return fmt.Errorf("%q must not contain '..'", p)
		}
	}
	return nil
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}

// configMapPayload reads a ConfigMap and maps it to files (data and
// binaryData).
func configMapPayload(ctx context.Context, r *Request, name string, items []v1.KeyToPath, defaultMode *int32, optional *bool) (map[string]atomicwriter.File, error) {
	cm, err := getConfigMap(ctx, r, name, optional)
	if err != nil {
		return nil, err
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keysPayload("ConfigMap", r.Pod.Namespace, name, data, items, defaultMode, optional)
}

// secretPayload reads a Secret and maps it to files.
func secretPayload(ctx context.Context, r *Request, name string, items []v1.KeyToPath, defaultMode *int32, optional *bool) (map[string]atomicwriter.File, error) {
	s, err := getSecret(ctx, r, name, optional)
	if err != nil {
		return nil, err
	}
	return keysPayload("Secret", r.Pod.Namespace, name, s.Data, items, defaultMode, optional)
}

// downwardPayload resolves downward API files: pod metadata (fieldRef) and
// container resources (resourceFieldRef).
func downwardPayload(r *Request, items []v1.DownwardAPIVolumeFile, defaultMode *int32) (map[string]atomicwriter.File, error) {
	out := make(map[string]atomicwriter.File, len(items))
	dc := downwardapi.Context{NodeName: r.Node.Name, Allocatable: r.Node.Allocatable}
	for i, it := range items {
		mode, err := fileMode(it.Mode, defaultMode)
		if err != nil {
			return nil, fmt.Errorf("items[%d].mode: %w", i, err)
		}
		if err := validItemPath(it.Path); err != nil {
			return nil, fmt.Errorf("items[%d].path: %w", i, err)
		}
		var v string
		switch {
		case it.FieldRef != nil:
			v, err = downwardapi.FieldValue(r.Pod, it.FieldRef, dc)
		case it.ResourceFieldRef != nil:
			v, err = downwardapi.ResourceValue(r.Pod, nil, it.ResourceFieldRef, r.Node.Allocatable)
		default:
			err = fmt.Errorf("one of fieldRef and resourceFieldRef is required")
		}
		if err != nil {
			return nil, fmt.Errorf("items[%d]: %w", i, err)
		}
		out[path.Clean(it.Path)] = atomicwriter.File{Data: []byte(v), Mode: mode}
	}
	return out, nil
}
