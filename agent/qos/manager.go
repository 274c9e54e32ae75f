package qos

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Manager keeps the node's pod cgroups: the kubepods hierarchy, one cgroup per
// pod, the QoS tiers' CPU shares.
type Manager interface {
	// Start creates kubepods and its QoS tiers, kubepods limited to the node
	// allocatable it was given.
	Start() error
	// EnsurePod creates the pod's cgroup (or updates it) with its resources and
	// returns the cgroup parent to give the runtime for its sandbox.
	EnsurePod(pod *v1.Pod) (parent string, err error)
	// CgroupParent is the cgroup parent of the pod, without touching cgroups.
	CgroupParent(pod *v1.Pod) string
	// RemovePod removes the pod's cgroup (in whichever tier it is) with anything
	// the runtime left below it. It fails while processes live in it.
	RemovePod(uid types.UID) error
	// UpdateQOS recomputes the tiers' CPU shares from the pods running on the node:
	// burstable gets the sum of its pods' CPU requests, besteffort the minimum.
	UpdateQOS(pods []*v1.Pod) error
	// Cleanup removes the cgroups of the pods keep refuses (pods that vanished
	// while the agent was down, or whose removal failed before) and returns the
	// uids of those it could not remove yet.
	Cleanup(keep func(types.UID) bool) (pending []types.UID, err error)
	// PodCgroups lists the pods that have a cgroup, by uid.
	PodCgroups() (map[types.UID]string, error)
	// Path is the path of the pod cgroup (or kubepods for "") under a hierarchy's
	// mount point.
	Path(uid types.UID) string
}

// Options configures a Manager. Zero values pick the defaults given with each.
type Options struct {
	// Driver is "cgroupfs" (default) or "systemd" (the kubelet's cgroupDriver).
	// With systemd, names are slices (kubepods.slice/kubepods-burstable.slice/…)
	// and the runtime is given the pod's leaf slice.
	Driver string
	// Root is the cgroupRoot under which kubepods lives (default "/").
	Root string
	// Mountpoint is where the cgroup hierarchies are mounted (default
	// /sys/fs/cgroup); a test points it at a directory tree of its own.
	Mountpoint string
	// Version forces cgroup v1 or v2 (default: the host's).
	Version int
	// Pod shapes each pod's cgroup (CFS quota, pids limit).
	Pod PodOptions
	// NodeAllocatable is what kubepods is limited to: its CPU sets kubepods'
	// shares, its memory and pids (when present) the limits. The agent gives
	// EnforcedAllocatable when enforceNodeAllocatable names "pods", else the
	// capacity's CPU only.
	NodeAllocatable v1.ResourceList
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

type manager struct {
	opts    Options
	tree    tree
	kubepod name

	mu   sync.Mutex
	pods map[types.UID]name // pods whose cgroup this manager made or found
}

// New returns a Manager for opts; it reads the cgroup mount but changes nothing
// until Start.
func New(o Options) (Manager, error) {
	if o.Driver == "" {
		o.Driver = DriverCgroupfs
	}
	if o.Driver != DriverCgroupfs && o.Driver != DriverSystemd {
		return nil, fmt.Errorf("cgroupDriver: %q is neither %q nor %q", o.Driver, DriverCgroupfs, DriverSystemd)
	}
	if o.Mountpoint == "" {
		o.Mountpoint = "/sys/fs/cgroup"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t, err := newTree(o.Mountpoint, o.Version)
	if err != nil {
		return nil, err
	}
	return &manager{opts: o, tree: t, kubepod: rootName(o.Root).child("kubepods"), pods: map[types.UID]name{}}, nil
}

func (m *manager) path(n name) string { return n.path(m.opts.Driver) }

func (m *manager) Path(uid types.UID) string {
	if uid == "" {
		return KubepodsPath(m.opts.Driver, m.opts.Root)
	}
	m.mu.Lock()
	n, ok := m.pods[uid]
	m.mu.Unlock()
	if !ok {
		return ""
	}
	return m.path(n)
}

func (m *manager) Start() error {
	res := Resources{}
	if cpu, ok := m.opts.NodeAllocatable[v1.ResourceCPU]; ok {
		s := MilliCPUToShares(cpu.MilliValue())
		res.CPUShares = &s
	}
	if mem, ok := m.opts.NodeAllocatable[v1.ResourceMemory]; ok {
		v := mem.Value()
		res.Memory = &v
	}
	if pids, ok := m.opts.NodeAllocatable["pid"]; ok {
		v := pids.Value()
		res.PidsLimit = &v
	}
	if err := m.tree.ensure(m.path(m.kubepod), res); err != nil {
		return fmt.Errorf("kubepods: %w", err)
	}
	minShares := uint64(MinShares)
	for _, t := range []string{"burstable", "besteffort"} {
		if err := m.tree.ensure(m.path(m.kubepod.child(t)), Resources{CPUShares: &minShares}); err != nil {
			return fmt.Errorf("QoS tier %s: %w", t, err)
		}
	}
	m.opts.Logger.Info("pod cgroups ready", "kubepods", m.path(m.kubepod), "driver", m.opts.Driver,
		"cgroup-version", m.tree.version(), "allocatable", formatList(m.opts.NodeAllocatable))
	return nil
}

// podCgroup is the name of the pod's cgroup.
func (m *manager) podCgroup(pod *v1.Pod) name {
	n := m.kubepod
	if t := tier(Class(pod)); t != "" {
		n = n.child(t)
	}
	return n.child(podName(pod.UID))
}

func (m *manager) CgroupParent(pod *v1.Pod) string {
	p := m.path(m.podCgroup(pod))
	if m.opts.Driver == DriverSystemd {
		// The runtime is given the leaf slice; systemd finds its parents by name.
		return p[strings.LastIndexByte(p, '/')+1:]
	}
	return p
}

func (m *manager) EnsurePod(pod *v1.Pod) (string, error) {
	n := m.podCgroup(pod)
	if err := m.tree.ensure(m.path(n), PodResources(pod, m.opts.Pod)); err != nil {
		return "", fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	m.mu.Lock()
	m.pods[pod.UID] = n
	m.mu.Unlock()
	return m.CgroupParent(pod), nil
}

func (m *manager) RemovePod(uid types.UID) error {
	var errs []error
	for _, n := range m.podCandidates(uid) {
		if err := m.tree.remove(m.path(n)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove cgroup of pod %s: %w", uid, err)
	}
	m.mu.Lock()
	delete(m.pods, uid)
	m.mu.Unlock()
	return nil
}

// podCandidates are the names a pod's cgroup may have: its class can only be
// known from the spec, which a vanished pod no longer has, so every tier is tried.
func (m *manager) podCandidates(uid types.UID) []name {
	p := podName(uid)
	return []name{m.kubepod.child(p), m.kubepod.child("burstable").child(p), m.kubepod.child("besteffort").child(p)}
}

func (m *manager) UpdateQOS(pods []*v1.Pod) error {
	var milli int64
	for _, pod := range pods {
		if Class(pod) == v1.PodQOSBurstable {
			req := PodRequests(pod)
			milli += req.Cpu().MilliValue()
		}
	}
	burstable := MilliCPUToShares(milli)
	minShares := uint64(MinShares)
	if err := m.tree.ensure(m.path(m.kubepod.child("burstable")), Resources{CPUShares: &burstable}); err != nil {
		return fmt.Errorf("QoS tier burstable: %w", err)
	}
	if err := m.tree.ensure(m.path(m.kubepod.child("besteffort")), Resources{CPUShares: &minShares}); err != nil {
		return fmt.Errorf("QoS tier besteffort: %w", err)
	}
	return nil
}

func (m *manager) PodCgroups() (map[types.UID]string, error) {
	out := map[types.UID]string{}
	for _, parent := range []name{m.kubepod, m.kubepod.child("burstable"), m.kubepod.child("besteffort")} {
		kids, err := m.tree.children(m.path(parent))
		if err != nil {
			return nil, fmt.Errorf("list pod cgroups: %w", err)
		}
		prefix := m.path(parent.child("pod"))
		prefix = prefix[strings.LastIndexByte(prefix, '/')+1:]
		prefix = strings.TrimSuffix(prefix, ".slice")
		for _, k := range kids {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			uid := strings.TrimSuffix(strings.TrimPrefix(k, prefix), ".slice")
			if m.opts.Driver == DriverSystemd {
				uid = strings.ReplaceAll(uid, "_", "-")
			}
			if uid != "" {
				out[types.UID(uid)] = m.path(parent) + "/" + k
			}
		}
	}
	return out, nil
}

func (m *manager) Cleanup(keep func(types.UID) bool) ([]types.UID, error) {
	found, err := m.PodCgroups()
	if err != nil {
		return nil, err
	}
	var pending []types.UID
	var errs []error
	for uid := range found {
		if keep(uid) {
			continue
		}
		if err := m.RemovePod(uid); err != nil {
			pending = append(pending, uid)
			errs = append(errs, err)
			continue
		}
		m.opts.Logger.Info("removed the cgroup of a pod that is gone", "pod", uid)
	}
	return pending, errors.Join(errs...)
}

func formatList(l v1.ResourceList) string {
	var parts []string
	for _, n := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, "pid"} {
		if q, ok := l[n]; ok {
			parts = append(parts, string(n)+"="+q.String())
		}
	}
	return strings.Join(parts, ",")
}
