package volumes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodekit-dev/nodekit/objects"
)

// DefaultResyncPeriod is how often Run sets up again the volumes that follow
// objects, besides the changes the object source reports.
const DefaultResyncPeriod = time.Minute

// Plugin serves one volume type. An embedder adds a type by giving its Plugin
// in Options.Plugins.
type Plugin interface {
	// Name is the plugin's directory under a pod's volumes directory, in the
	// kubelet's escaped form ("kubernetes.io~configmap"); a plugin that keeps
	// nothing there (hostPath) still names itself.
	Name() string
	// Handles reports whether the plugin serves v.
	Handles(v *v1.Volume) bool
	// SetUp makes the volume ready for the pod's containers. It runs before
	// any container of the pod is created, and again at each sync and each
	// change of an object the volume follows: it must be idempotent, and
	// write nothing when nothing changed (after an agent restart it finds its
	// mounts in place and keeps them).
	SetUp(ctx context.Context, r *Request) (Volume, error)
}

// TearDowner is implemented by plugins with something to undo besides what is
// mounted in, and the files of, the volume's directory, which the manager
// removes itself.
type TearDowner interface {
	TearDown(ctx context.Context, dir string) error
}

// Request is one volume of one pod to set up.
type Request struct {
	Pod    *v1.Pod
	Volume *v1.Volume
	// Dir is the volume's directory, <root>/pods/<uid>/volumes/<plugin>/<name>;
	// it may not exist yet.
	Dir string
	// Objects gives configMaps and secrets; nil when there is no source.
	Objects objects.Source
	// Node is what the downward API and memory-backed volumes need to know of
	// the node.
	Node NodeInfo
}

// NodeInfo is what volumes read about the node.
type NodeInfo struct {
	Name string
	// Allocatable: memory sizes memory-backed volumes without a smaller
	// limit; every resource stands in for unset limits in resource fields.
	Allocatable v1.ResourceList
}

// Volume is a volume set up for a pod.
type Volume struct {
	// Path is the host path containers mount (empty for image volumes).
	Path string
	// ReadOnly volumes are mounted read-only in every container, whatever
	// the volumeMount says (configMap, secret, downwardAPI, projected, image).
	ReadOnly bool
	// Image is set for image volumes: the runtime mounts the image itself.
	Image *v1.ImageVolumeSource
	// Follows lists the objects the volume's content comes from: it is set
	// up again when one of them changes.
	Follows []objects.Ref
	// Metadata says the content comes from the pod's metadata (downward API):
	// it is set up again when the pod changes.
	Metadata bool
	// Token says the content holds a service account token: it is set up
	// again at every resync, which renews it when 80% of its lifetime passed.
	Token bool
}

// Mount is one mount of a container, ready for the runtime.
type Mount struct {
	ContainerPath string
	// HostPath is empty for image volumes.
	HostPath    string
	ReadOnly    bool
	Propagation v1.MountPropagationMode
	// Image is the image reference of an image volume, ImageSubPath the path
	// inside the image it mounts.
	Image        string
	ImageSubPath string
}

// Options configure a Manager. RootDir is required.
type Options struct {
	// RootDir holds the pod directories: <RootDir>/pods/<uid>.
	RootDir string
	// Objects gives configMaps and secrets; nil: volumes that need one fail
	// unless optional. When it implements objects.Notifier, changes reach the
	// volumes that follow them at once (while Run runs).
	Objects objects.Source
	// Plugins are tried before the built-in ones, in order.
	Plugins []Plugin
	Node    NodeInfo
	// ResyncPeriod: Run sets up again every volume that follows objects this
	// often; default DefaultResyncPeriod.
	ResyncPeriod time.Duration
	Logger       *slog.Logger
}

// Manager sets up, keeps current and tears down the volumes of pods.
type Manager struct {
	o       Options
	plugins []Plugin
	log     *slog.Logger

	mu   sync.Mutex
	pods map[types.UID]*podVolumes
}

// podVolumes is what the manager keeps of one pod; mu serializes its setups
// and its teardown.
type podVolumes struct {
	mu   sync.Mutex
	pod  *v1.Pod
	vols map[string]Volume
	gone bool
}

// New returns a Manager.
func New(o Options) (*Manager, error) {
	if o.RootDir == "" {
		return nil, errors.New("volumes: RootDir is required")
	}
	if o.ResyncPeriod <= 0 {
		o.ResyncPeriod = DefaultResyncPeriod
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m := &Manager{o: o, log: o.Logger, pods: map[types.UID]*podVolumes{}}
	m.plugins = append(slices.Clone(o.Plugins), builtinPlugins()...)
	return m, nil
}

// PodDir is a pod's directory, <RootDir>/pods/<uid>.
func (m *Manager) PodDir(uid types.UID) string {
	return filepath.Join(m.o.RootDir, "pods", string(uid))
}

// plugin finds the plugin serving v.
func (m *Manager) plugin(v *v1.Volume) Plugin {
	for _, p := range m.plugins {
		if p.Handles(v) {
			return p
		}
	}
	return nil
}

// SetUp makes every volume of pod ready and returns them by name. It is called
// before the pod's containers are created and may be called at every sync: it
// writes only what changed and keeps mounts in place. The manager then keeps
// the pod's volumes current (see Run) until TearDown. Every volume is tried;
// the error names each that failed, as the kubelet's FailedMount message.
func (m *Manager) SetUp(ctx context.Context, pod *v1.Pod) (map[string]Volume, error) {
	if pod.UID == "" {
		return nil, errors.New("volumes: pod has no UID")
	}
	m.mu.Lock()
	pv := m.pods[pod.UID]
	if pv == nil {
		pv = &podVolumes{}
		m.pods[pod.UID] = pv
	}
	m.mu.Unlock()

	pv.mu.Lock()
	defer pv.mu.Unlock()
	if pv.gone {
		return nil, fmt.Errorf("volumes: pod %s is being torn down", pod.UID)
	}
	vols := make(map[string]Volume, len(pod.Spec.Volumes))
	var errs []error
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		vol, err := m.setUpVolume(ctx, pod, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vols[v.Name] = vol
	}
	pv.pod, pv.vols = pod, vols
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return vols, nil
}

// setUpVolume runs one volume's plugin.
func (m *Manager) setUpVolume(ctx context.Context, pod *v1.Pod, v *v1.Volume) (Volume, error) {
	if err := validName(v.Name); err != nil {
		return Volume{}, fmt.Errorf("MountVolume.SetUp failed for volume %q: %w", v.Name, err)
	}
	p := m.plugin(v)
	if p == nil {
		return Volume{}, fmt.Errorf("MountVolume.SetUp failed for volume %q: no volume plugin serves it", v.Name)
	}
	r := &Request{
		Pod:     pod,
		Volume:  v,
		Dir:     filepath.Join(m.PodDir(pod.UID), "volumes", p.Name(), v.Name),
		Objects: m.o.Objects,
		Node:    m.o.Node,
	}
	vol, err := p.SetUp(ctx, r)
	if err != nil {
		return Volume{}, fmt.Errorf("MountVolume.SetUp failed for volume %q: %w", v.Name, err)
	}
	return vol, nil
}

// validName refuses names that would leave the plugin's directory.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("invalid volume name %q", name)
	}
	return nil
}

// TearDown undoes the pod's volumes once its containers are gone: every mount
// under the pod's directory is unmounted (subPath binds, memory-backed
// volumes, plugin mounts), then the volumes and volume-subpaths directories are
// removed. Nothing is removed while a mount remains. It works from the
// directory alone, so it also cleans pods the manager never set up (after a
// restart). Tearing down what is gone is not an error.
func (m *Manager) TearDown(ctx context.Context, uid types.UID) error {
	if uid == "" {
		return errors.New("volumes: TearDown: empty pod UID")
	}
	m.mu.Lock()
	pv := m.pods[uid]
	m.mu.Unlock()
	if pv != nil {
		pv.mu.Lock()
		defer pv.mu.Unlock()
		pv.gone = true
	}
	dir := m.PodDir(uid)
	var errs []error
	// Plugins with more to undo (an embedder's) run first.
	for _, p := range m.plugins {
		td, ok := p.(TearDowner)
		if !ok {
			continue
		}
		entries, _ := os.ReadDir(filepath.Join(dir, "volumes", p.Name()))
		for _, e := range entries {
			if err := td.TearDown(ctx, filepath.Join(dir, "volumes", p.Name(), e.Name())); err != nil {
				errs = append(errs, fmt.Errorf("tear down volume %s: %w", e.Name(), err))
			}
		}
	}
	if err := unmountUnder(dir); err != nil {
		errs = append(errs, err)
	} else {
		for _, sub := range []string{"volume-subpaths", "volumes"} {
			if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", sub, err))
			}
		}
	}
	if len(errs) > 0 {
		if pv != nil {
			pv.gone = false // a later TearDown tries again; SetUp may not race it meanwhile
		}
		return fmt.Errorf("volumes: pod %s: %w", uid, errors.Join(errs...))
	}
	m.mu.Lock()
	if m.pods[uid] == pv {
		delete(m.pods, uid)
	}
	m.mu.Unlock()
	return nil
}

// PodDirs lists the UIDs of the pod directories under RootDir, for the
// caller's orphan cleanup (pods that vanished while the agent was down).
func (m *Manager) PodDirs() ([]types.UID, error) {
	entries, err := os.ReadDir(filepath.Join(m.o.RootDir, "pods"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	out := make([]types.UID, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, types.UID(e.Name()))
		}
	}
	return out, nil
}

// Run keeps the volumes that follow objects current until ctx ends: at once
// when the object source reports a change (objects.Notifier), and every
// ResyncPeriod.
func (m *Manager) Run(ctx context.Context) {
	changed := make(chan objects.Ref, 256)
	overflow := make(chan struct{}, 1)
	if n, ok := m.o.Objects.(objects.Notifier); ok && m.o.Objects != nil {
		cancel := n.Subscribe(func(r objects.Ref) {
			select {
			case changed <- r:
			default: // too many at once: refresh everything
				select {
				case overflow <- struct{}{}:
				default:
				}
			}
		})
		defer cancel()
	}
	t := time.NewTicker(m.o.ResyncPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-changed:
			refs := map[objects.Ref]bool{r: true}
		drain:
			for {
				select {
				case r := <-changed:
					refs[r] = true
				default:
					break drain
				}
			}
			m.refresh(ctx, func(v Volume) bool {
				return slices.ContainsFunc(v.Follows, func(f objects.Ref) bool { return refs[f] })
			})
		case <-overflow:
			m.refresh(ctx, func(v Volume) bool { return len(v.Follows) > 0 })
		case <-t.C:
			m.refresh(ctx, func(v Volume) bool { return len(v.Follows) > 0 || v.Token })
		}
	}
}

// refresh sets up again, in every pod, the volumes match selects.
func (m *Manager) refresh(ctx context.Context, match func(Volume) bool) {
	m.mu.Lock()
	pods := make([]*podVolumes, 0, len(m.pods))
	for _, pv := range m.pods {
		pods = append(pods, pv)
	}
	m.mu.Unlock()
	for _, pv := range pods {
		pv.mu.Lock()
		if pv.gone || pv.pod == nil {
			pv.mu.Unlock()
			continue
		}
		for i := range pv.pod.Spec.Volumes {
			v := &pv.pod.Spec.Volumes[i]
			old, ok := pv.vols[v.Name]
			if !ok || !match(old) {
				continue
			}
			vol, err := m.setUpVolume(ctx, pv.pod, v)
			if err != nil {
				m.log.Warn("volume not updated", "pod", pv.pod.Namespace+"/"+pv.pod.Name, "volume", v.Name, "err", err)
				continue
			}
			pv.vols[v.Name] = vol
		}
		pv.mu.Unlock()
	}
}
