package volumes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/nodekit-dev/nodekit/objects"
	"github.com/nodekit-dev/nodekit/volumes/atomicwriter"
)

// The kubelet's plugin directory names.
const (
	EmptyDirPlugin    = "kubernetes.io~empty-dir"
	HostPathPlugin    = "kubernetes.io~host-path"
	ConfigMapPlugin   = "kubernetes.io~configmap"
	SecretPlugin      = "kubernetes.io~secret"
	DownwardAPIPlugin = "kubernetes.io~downward-api"
	ProjectedPlugin   = "kubernetes.io~projected"
	ImagePlugin       = "kubernetes.io~image"
)

// builtinPlugins are the volume types every node serves.
func builtinPlugins() []Plugin {
	return []Plugin{
		emptyDir{}, hostPath{}, configMap{}, secret{}, downwardAPI{}, projected{}, image{},
	}
}

// emptyDir: a directory under the pod directory, world-writable; medium Memory
// is a tmpfs sized by the smallest of sizeLimit, the pod's memory limit and the
// node's allocatable memory (as the kubelet).
type emptyDir struct{}

func (emptyDir) Name() string              { return EmptyDirPlugin }
func (emptyDir) Handles(v *v1.Volume) bool { return v.EmptyDir != nil }
func (emptyDir) SetUp(_ context.Context, r *Request) (Volume, error) {
	ed := r.Volume.EmptyDir
	_, statErr := os.Stat(r.Dir)
	fresh := errors.Is(statErr, fs.ErrNotExist)
	switch ed.Medium {
	case v1.StorageMediumDefault:
		if err := os.MkdirAll(r.Dir, 0o750); err != nil {
			return Volume{}, fmt.Errorf("emptyDir: %w", err)
		}
	case v1.StorageMediumMemory:
		mounted, err := memoryDir(r.Dir, memorySize(r.Pod, ed.SizeLimit, r.Node.Allocatable))
		if err != nil {
			return Volume{}, fmt.Errorf("emptyDir medium Memory: %w", err)
		}
		fresh = fresh || mounted
	default:
		return Volume{}, fmt.Errorf("emptyDir medium %q is not supported", ed.Medium)
	}
	if fresh {
		// World-writable, as the kubelet's emptyDir (the umask is not
		// applied); with an fsGroup, group-owned with the setgid bit.
		mode := fs.FileMode(0o777)
		if g := fsGroup(r.Pod); g != nil {
			if err := os.Lchown(r.Dir, -1, int(*g)); err != nil {
				return Volume{}, fmt.Errorf("emptyDir: fsGroup: %w", err)
			}
			mode |= os.ModeSetgid
		}
		if err := os.Chmod(r.Dir, mode); err != nil {
			return Volume{}, fmt.Errorf("emptyDir: %w", err)
		}
	}
	return Volume{Path: r.Dir}, nil
}

// fsGroup is the pod's fsGroup, if any.
func fsGroup(pod *v1.Pod) *int64 {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

// memorySize is the size of a memory-backed volume: the node's allocatable
// memory, lowered to the pod's memory limit when every container has one, and
// to sizeLimit when smaller (the kubelet's calculateEmptyDirMemorySize).
func memorySize(pod *v1.Pod, sizeLimit *resource.Quantity, allocatable v1.ResourceList) int64 {
	size := allocatable.Memory().Value()
	if limit := podMemoryLimit(pod); limit > 0 && (size == 0 || limit < size) {
		size = limit
	}
	if sizeLimit != nil && sizeLimit.Value() > 0 && (size == 0 || sizeLimit.Value() < size) {
		size = sizeLimit.Value()
	}
	return size
}

// podMemoryLimit is the pod's memory limit when it has one: its pod-level
// limit, or the sum over its containers when every one declares a limit.
func podMemoryLimit(pod *v1.Pod) int64 {
	if resourcehelper.IsPodLevelResourcesSet(pod) {
		if q, ok := pod.Spec.Resources.Limits[v1.ResourceMemory]; ok {
			return q.Value()
		}
	}
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if q, ok := cs[i].Resources.Limits[v1.ResourceMemory]; !ok || q.IsZero() {
				return 0
			}
		}
	}
	limits := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
	return limits.Memory().Value()
}

// hostPath: a path of the host, checked against its type.
type hostPath struct{}

func (hostPath) Name() string              { return HostPathPlugin }
func (hostPath) Handles(v *v1.Volume) bool { return v.HostPath != nil }
func (hostPath) SetUp(_ context.Context, r *Request) (Volume, error) {
	if err := checkHostPath(r.Volume.HostPath.Path, r.Volume.HostPath.Type); err != nil {
		return Volume{}, err
	}
	return Volume{Path: r.Volume.HostPath.Path}, nil
}

// checkHostPath enforces a hostPath volume's type with the kubelet's messages:
// DirectoryOrCreate and FileOrCreate create what is missing (a file's parent
// directory is not created, as upstream).
func checkHostPath(path string, t *v1.HostPathType) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("hostPath %q: not an absolute path", path)
	}
	typ := v1.HostPathUnset
	if t != nil {
		typ = *t
	}
	fi, err := os.Stat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hostPath type check failed: %w", err)
	}
	switch typ {
	case v1.HostPathUnset:
		return nil
	case v1.HostPathDirectoryOrCreate:
		if !exists {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("hostPath %s: create directory: %w", path, err)
			}
			return nil
		}
		fallthrough
	case v1.HostPathDirectory:
		if !exists || !fi.IsDir() {
			return fmt.Errorf("hostPath type check failed: %s is not a directory", path)
		}
	case v1.HostPathFileOrCreate:
		if !exists {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return fmt.Errorf("hostPath %s: create file: %w", path, err)
			}
			return f.Close()
		}
		fallthrough
	case v1.HostPathFile:
		if !exists || !fi.Mode().IsRegular() {
			return fmt.Errorf("hostPath type check failed: %s is not a file", path)
		}
	case v1.HostPathSocket:
		if !exists || fi.Mode()&fs.ModeSocket == 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a socket file", path)
		}
	case v1.HostPathCharDev:
		if !exists || fi.Mode()&fs.ModeCharDevice == 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a character device", path)
		}
	case v1.HostPathBlockDev:
		if !exists || fi.Mode()&fs.ModeDevice == 0 || fi.Mode()&fs.ModeCharDevice != 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a block device", path)
		}
	default:
		return fmt.Errorf("hostPath %s: type %q is not supported", path, typ)
	}
	return nil
}

// configMap: the keys of a ConfigMap as files, on disk.
type configMap struct{}

func (configMap) Name() string              { return ConfigMapPlugin }
func (configMap) Handles(v *v1.Volume) bool { return v.ConfigMap != nil }
func (configMap) SetUp(ctx context.Context, r *Request) (Volume, error) {
	src := r.Volume.ConfigMap
	payload, err := configMapPayload(ctx, r, src.Name, src.Items, src.DefaultMode, src.Optional)
	if err != nil {
		return Volume{}, err
	}
	if err := os.MkdirAll(r.Dir, 0o750); err != nil {
		return Volume{}, fmt.Errorf("configMap: %w", err)
	}
	if err := write(r, payload); err != nil {
		return Volume{}, err
	}
	return Volume{Path: r.Dir, ReadOnly: true, Follows: []objects.Ref{{Kind: objects.KindConfigMap, Namespace: r.Pod.Namespace, Name: src.Name}}}, nil
}

// secret: the keys of a Secret as files, on a tmpfs (never on disk).
type secret struct{}

func (secret) Name() string              { return SecretPlugin }
func (secret) Handles(v *v1.Volume) bool { return v.Secret != nil }
func (secret) SetUp(ctx context.Context, r *Request) (Volume, error) {
	src := r.Volume.Secret
	payload, err := secretPayload(ctx, r, src.SecretName, src.Items, src.DefaultMode, src.Optional)
	if err != nil {
		return Volume{}, err
	}
	if _, err := memoryDir(r.Dir, memorySize(r.Pod, nil, r.Node.Allocatable)); err != nil {
		return Volume{}, fmt.Errorf("secret: %w", err)
	}
	if err := write(r, payload); err != nil {
		return Volume{}, err
	}
	return Volume{Path: r.Dir, ReadOnly: true, Follows: []objects.Ref{{Kind: objects.KindSecret, Namespace: r.Pod.Namespace, Name: src.SecretName}}}, nil
}

// downwardAPI: fields of the pod as files, on a tmpfs (as the kubelet).
type downwardAPI struct{}

func (downwardAPI) Name() string              { return DownwardAPIPlugin }
func (downwardAPI) Handles(v *v1.Volume) bool { return v.DownwardAPI != nil }
func (downwardAPI) SetUp(_ context.Context, r *Request) (Volume, error) {
	src := r.Volume.DownwardAPI
	payload, err := downwardPayload(r, src.Items, src.DefaultMode)
	if err != nil {
		return Volume{}, err
	}
	if _, err := memoryDir(r.Dir, memorySize(r.Pod, nil, r.Node.Allocatable)); err != nil {
		return Volume{}, fmt.Errorf("downwardAPI: %w", err)
	}
	if err := write(r, payload); err != nil {
		return Volume{}, err
	}
	return Volume{Path: r.Dir, ReadOnly: true, Metadata: true}, nil
}

// projected: configMaps, secrets and downward API fields in one directory, on a
// tmpfs, and service account tokens when the object source issues them (an
// API server: objects.TokenSource).
type projected struct{}

func (projected) Name() string              { return ProjectedPlugin }
func (projected) Handles(v *v1.Volume) bool { return v.Projected != nil }
func (projected) SetUp(ctx context.Context, r *Request) (Volume, error) {
	src := r.Volume.Projected
	payload := map[string]atomicwriter.File{}
	vol := Volume{Path: r.Dir, ReadOnly: true}
	var errs []error
	for i, s := range src.Sources {
		var part map[string]atomicwriter.File
		var err error
		switch {
		case s.ConfigMap != nil:
			vol.Follows = append(vol.Follows, objects.Ref{Kind: objects.KindConfigMap, Namespace: r.Pod.Namespace, Name: s.ConfigMap.Name})
			part, err = configMapPayload(ctx, r, s.ConfigMap.Name, s.ConfigMap.Items, src.DefaultMode, s.ConfigMap.Optional)
		case s.Secret != nil:
			vol.Follows = append(vol.Follows, objects.Ref{Kind: objects.KindSecret, Namespace: r.Pod.Namespace, Name: s.Secret.Name})
			part, err = secretPayload(ctx, r, s.Secret.Name, s.Secret.Items, src.DefaultMode, s.Secret.Optional)
		case s.DownwardAPI != nil:
			vol.Metadata = true
			part, err = downwardPayload(r, s.DownwardAPI.Items, src.DefaultMode)
		case s.ServiceAccountToken != nil:
			part, err = tokenPayload(ctx, r, s.ServiceAccountToken, src.DefaultMode)
			vol.Token = true
		default:
			err = errors.New("unsupported projection")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sources[%d]: %w", i, err))
			continue
		}
		for k, f := range part {
			payload[k] = f
		}
	}
	if len(errs) > 0 {
		return Volume{}, errors.Join(errs...)
	}
	if _, err := memoryDir(r.Dir, memorySize(r.Pod, nil, r.Node.Allocatable)); err != nil {
		return Volume{}, fmt.Errorf("projected: %w", err)
	}
	if err := write(r, payload); err != nil {
		return Volume{}, err
	}
	return vol, nil
}

// image: an OCI image mounted read-only by the runtime (CRI Mount.image); the
// caller pulls it per its pullPolicy.
type image struct{}

func (image) Name() string              { return ImagePlugin }
func (image) Handles(v *v1.Volume) bool { return v.Image != nil }
func (image) SetUp(_ context.Context, r *Request) (Volume, error) {
	if r.Volume.Image.Reference == "" {
		return Volume{}, errors.New("image: reference is empty")
	}
	return Volume{ReadOnly: true, Image: r.Volume.Image}, nil
}

// tokenPayload is a service account token file, from a TokenSource (the API
// server's TokenRequest); mode 0600 when the pod has an fsGroup (which then
// makes it 0640), as the kubelet.
func tokenPayload(ctx context.Context, r *Request, p *v1.ServiceAccountTokenProjection, defaultMode *int32) (map[string]atomicwriter.File, error) {
	ts, ok := r.Objects.(objects.TokenSource)
	if !ok || r.Objects == nil {
		return nil, errors.New("serviceAccountToken needs an API server (cluster mode)")
	}
	if err := validItemPath(p.Path); err != nil {
		return nil, fmt.Errorf("serviceAccountToken.path: %w", err)
	}
	var exp int64
	if p.ExpirationSeconds != nil {
		exp = *p.ExpirationSeconds
	}
	token, err := ts.ServiceAccountToken(ctx, r.Pod, p.Audience, exp)
	if err != nil {
		return nil, err
	}
	mode, err := fileMode(nil, defaultMode)
	if err != nil {
		return nil, fmt.Errorf("defaultMode: %w", err)
	}
	if fsGroup(r.Pod) != nil {
		mode = 0o600
	}
	return map[string]atomicwriter.File{p.Path: {Data: []byte(token), Mode: mode}}, nil
}

// write puts a payload in the volume's directory atomically, owned by the
// pod's fsGroup if it has one.
func write(r *Request, payload map[string]atomicwriter.File) error {
	if _, err := atomicwriter.New(r.Dir).WithFSGroup(fsGroup(r.Pod)).Write(payload); err != nil {
		return err
	}
	return nil
}

// getConfigMap reads a ConfigMap; an optional one that does not exist is
// empty.
func getConfigMap(ctx context.Context, r *Request, name string, optional *bool) (*v1.ConfigMap, error) {
	var cm *v1.ConfigMap
	var err error
	if r.Objects == nil {
		err = apierrors.NewNotFound(v1.Resource("configmaps"), name)
	} else {
		cm, err = r.Objects.ConfigMap(ctx, r.Pod.Namespace, name)
	}
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.Pod.Namespace, Name: name}}, nil
	}
	return cm, err
}

// getSecret reads a Secret; an optional one that does not exist is empty.
func getSecret(ctx context.Context, r *Request, name string, optional *bool) (*v1.Secret, error) {
	var s *v1.Secret
	var err error
	if r.Objects == nil {
		err = apierrors.NewNotFound(v1.Resource("secrets"), name)
	} else {
		s, err = r.Objects.Secret(ctx, r.Pod.Namespace, name)
	}
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.Pod.Namespace, Name: name}}, nil
	}
	return s, err
}
