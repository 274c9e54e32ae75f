package cri

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/cgstats"
)

// layerUsageTTL is how long a writable layer's measured size is reused: walking
// every layer on each ListContainerStats would make the call cost grow with the
// files containers write.
const layerUsageTTL = 3 * time.Second

// minRateWindow is the shortest interval usageNanoCores is computed over: CPU
// time is charged in scheduler ticks, so a rate over a few milliseconds (two
// calls in a row) says little. Calls closer together than this get the rate of
// the last full window.
const minRateWindow = time.Second

// statsState is what the stats RPCs keep between calls, in memory only: the last
// cgroup sample of each container and sandbox (usageNanoCores is computed from
// two samples, as containerd does), the measured size of writable layers, and
// each container's cgroup path, read once from its bundle.
type statsState struct {
	cgroups cgstats.Reader

	mu      sync.Mutex
	prev    map[string]*cpuWindow // by container id or "sandbox/" + sandbox id
	layers  map[string]layerUsage // by container id
	cgpaths map[string]string     // container id → cgroup path below the hierarchy roots
}

// cpuWindow is the sample a CPU rate is computed from, and the last rate.
type cpuWindow struct {
	base *cgstats.Stats
	rate *uint64
}

type layerUsage struct {
	at            time.Time
	bytes, inodes uint64
}

// initStats picks the cgroup version once and prepares the stats caches.
func (s *Server) initStats() error {
	r, err := cgstats.New(cgstats.Options{})
	if err != nil {
		return fmt.Errorf("cgroup statistics: %w", err)
	}
	s.stats = &statsState{
		cgroups: r,
		prev:    map[string]*cpuWindow{},
		layers:  map[string]layerUsage{},
		cgpaths: map[string]string{},
	}
	return nil
}

// sandboxStatsKey keys a sandbox's samples apart from containers'.
func sandboxStatsKey(id string) string { return "sandbox/" + id }

// sample reads the cgroup at path. rate is key's CPU use in nanocores since its
// previous sample at least minRateWindow older (which cur then replaces), or the
// last such rate; nil until there is one.
func (st *statsState) sample(key, path string) (cur *cgstats.Stats, rate *uint64, err error) {
	cur, err = st.cgroups.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	w := st.prev[key]
	if w == nil {
		st.prev[key] = &cpuWindow{base: cur}
		return cur, nil, nil
	}
	if cur.Timestamp.Sub(w.base.Timestamp) >= minRateWindow || cur.CPU.UsageNanos < w.base.CPU.UsageNanos {
		w.rate = nil
		if r, ok := cgstats.NanoCores(w.base, cur); ok {
			w.rate = &r
		}
		w.base = cur
	}
	return cur, w.rate, nil
}

// pruneStats forgets what it kept about containers and sandboxes that are gone.
func (s *Server) pruneStats() {
	live := map[string]bool{}
	for _, c := range s.objs.listContainers() {
		live[c.id] = true
	}
	for _, sb := range s.objs.listSandboxes() {
		live[sandboxStatsKey(sb.id)] = true
	}
	st := s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	for k := range st.prev {
		if !live[k] {
			delete(st.prev, k)
		}
	}
	for k := range st.layers {
		if !live[k] {
			delete(st.layers, k)
		}
	}
	for k := range st.cgpaths {
		if !live[k] {
			delete(st.cgpaths, k)
		}
	}
}

// containerCgroup returns the cgroup path of a container: linux.cgroupsPath of
// its bundle's config.json, in either driver's notation, read once.
func (s *Server) containerCgroup(id string) (string, error) {
	st := s.stats
	st.mu.Lock()
	p, ok := st.cgpaths[id]
	st.mu.Unlock()
	if ok {
		return p, nil
	}
	sp, err := s.specOf(id)
	if err != nil {
		return "", fmt.Errorf("container %s: read OCI spec: %w", id, err)
	}
	if sp.Linux == nil || sp.Linux.CgroupsPath == "" {
		return "", fmt.Errorf("container %s: OCI spec has no linux.cgroupsPath", id)
	}
	p, err = cgstats.Path(sp.Linux.CgroupsPath)
	if err != nil {
		return "", fmt.Errorf("container %s: %w", id, err)
	}
	st.mu.Lock()
	st.cgpaths[id] = p
	st.mu.Unlock()
	return p, nil
}

// containerStats reports a container's attributes and writable layer, and for a
// running container its CPU, memory and swap use from its cgroup.
func (s *Server) containerStats(rec *containerRecord) (*runtime.ContainerStats, error) {
	cs := &runtime.ContainerStats{
		Attributes: &runtime.ContainerAttributes{
			Id:          rec.ID,
			Metadata:    rec.Config.GetMetadata(),
			Labels:      rec.Config.GetLabels(),
			Annotations: rec.Config.GetAnnotations(),
		},
		WritableLayer: s.writableLayer(rec.ID),
	}
	if rec.State != runtime.ContainerState_CONTAINER_RUNNING {
		return cs, nil
	}
	path, err := s.containerCgroup(rec.ID)
	if err != nil {
		return cs, err
	}
	st, rate, err := s.stats.sample(rec.ID, path)
	if errors.Is(err, cgstats.ErrNotFound) {
		return cs, nil // it exited meanwhile
	}
	if err != nil {
		return cs, fmt.Errorf("container %s: %w", rec.ID, err)
	}
	cs.Cpu = cpuUsage(st, rate)
	cs.Memory = memoryUsage(st)
	ts := st.Timestamp.UnixNano()
	cs.Swap = &runtime.SwapUsage{Timestamp: ts, SwapUsageBytes: u64(st.Memory.Swap)}
	if st.IOPressure != nil {
		cs.Io = &runtime.IoUsage{Timestamp: ts, Psi: psi(st.IOPressure)}
	}
	return cs, nil
}

func cpuUsage(st *cgstats.Stats, rate *uint64) *runtime.CpuUsage {
	u := &runtime.CpuUsage{
		Timestamp:            st.Timestamp.UnixNano(),
		UsageCoreNanoSeconds: u64(st.CPU.UsageNanos),
		Psi:                  psi(st.CPUPressure),
	}
	if rate != nil {
		u.UsageNanoCores = u64(*rate)
	}
	return u
}

func memoryUsage(st *cgstats.Stats) *runtime.MemoryUsage {
	m := st.Memory
	u := &runtime.MemoryUsage{
		Timestamp:       st.Timestamp.UnixNano(),
		WorkingSetBytes: u64(m.WorkingSet),
		UsageBytes:      u64(m.Usage),
		RssBytes:        u64(m.RSS),
		PageFaults:      u64(m.PageFaults),
		MajorPageFaults: u64(m.MajorPageFaults),
		Psi:             psi(st.MemoryPressure),
	}
	if avail, ok := m.Available(); ok {
		u.AvailableBytes = u64(avail)
	}
	return u
}

func psi(p *cgstats.Pressure) *runtime.PsiStats {
	if p == nil {
		return nil
	}
	data := func(d *cgstats.PressureData) *runtime.PsiData {
		if d == nil {
			return nil
		}
		return &runtime.PsiData{Total: d.TotalNanos, Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300}
	}
	return &runtime.PsiStats{Some: data(p.Some), Full: data(p.Full)}
}

func u64(v uint64) *runtime.UInt64Value { return &runtime.UInt64Value{Value: v} }

// writableLayersDir holds every container's writable layer (<id>/upper); it is
// the file system identifier writable layer stats report.
func (s *Server) writableLayersDir() string { return filepath.Join(s.paths.root, "containers") }

// writableLayer reports the bytes and inodes of a container's writable layer,
// measured at most every layerUsageTTL.
func (s *Server) writableLayer(id string) *runtime.FilesystemUsage {
	st := s.stats
	st.mu.Lock()
	u, ok := st.layers[id]
	st.mu.Unlock()
	if !ok || time.Since(u.at) >= layerUsageTTL {
		u = layerUsage{at: time.Now()}
		u.bytes, u.inodes = diskUsage(filepath.Join(s.paths.containerRoot(id), "upper"))
		st.mu.Lock()
		st.layers[id] = u
		st.mu.Unlock()
	}
	return &runtime.FilesystemUsage{
		Timestamp:  u.at.UnixNano(),
		FsId:       &runtime.FilesystemIdentifier{Mountpoint: s.writableLayersDir()},
		UsedBytes:  u64(u.bytes),
		InodesUsed: u64(u.inodes),
	}
}

// diskUsage walks dir and sums the disk space (allocated blocks) and inodes of
// everything in it, dir included, counting hard-linked files once, as
// containerd's snapshotters do. Entries that vanish during the walk are skipped;
// a missing dir uses nothing.
func diskUsage(dir string) (bytes, inodes uint64) {
	seen := map[uint64]bool{}
	// The callback skips what cannot be read and never fails the walk.
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			bytes += uint64(info.Size())
			inodes++
			return nil
		}
		ino := uint64(st.Ino)
		if seen[ino] {
			return nil
		}
		seen[ino] = true
		bytes += uint64(st.Blocks) * 512
		inodes++
		return nil
	})
	return bytes, inodes
}
