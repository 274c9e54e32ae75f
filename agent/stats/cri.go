package stats

import (
	"cmp"
	"path/filepath"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodekit-dev/nodekit/internal/diskusage"
)

// CRIStats is what a runtime reports through the CRI list calls.
type CRIStats struct {
	Sandboxes  []*runtimeapi.PodSandbox // ListPodSandbox: pod identity and start time
	Containers []*runtimeapi.Container  // ListContainers: start times; only running containers are reported
	// SandboxStats is ListPodSandboxStats; nil when the runtime does not
	// implement it (Unimplemented), and then ContainerStats
	// (ListContainerStats) is used, with pod CPU and memory summed over the
	// containers.
	SandboxStats   []*runtimeapi.PodSandboxStats
	ContainerStats []*runtimeapi.ContainerStats
}

// PodOptions configures FromCRI.
type PodOptions struct {
	// PodLogsDir is the CRI log root (/var/log/pods): a container's log usage
	// is that of <PodLogsDir>/<namespace>_<name>_<uid>/<container>, and its
	// filesystem gives the capacity of logs and ephemeral storage. "" leaves
	// log usage out.
	PodLogsDir string
	// Now stamps figures the runtime did not report (zeros, as the kubelet
	// reports them); zero means time.Now().
	Now time.Time
}

// FromCRI converts runtime stats to Summary pod stats, as the kubelet's CRI
// stats provider does: one entry per pod (its ready sandboxes, or its newest
// one), listing its running containers by name. Pods are sorted by namespace
// and name. Volume stats are not included.
func FromCRI(in CRIStats, o PodOptions) []statsapi.PodStats {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	c := &converter{o: o, fs: map[string]*fsInfo{}}

	running := map[string]*runtimeapi.Container{}
	for _, ctr := range in.Containers {
		if ctr.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			running[ctr.GetId()] = ctr
		}
	}
	sandboxStats := map[string]*runtimeapi.PodSandboxStats{}
	for _, s := range in.SandboxStats {
		if s.GetAttributes() != nil {
			sandboxStats[s.Attributes.Id] = s
		}
	}
	containerStats := map[string][]*runtimeapi.ContainerStats{} // by sandbox id, when there are no sandbox stats
	if in.SandboxStats == nil {
		for _, cs := range in.ContainerStats {
			if ctr := running[cs.GetAttributes().GetId()]; ctr != nil {
				containerStats[ctr.PodSandboxId] = append(containerStats[ctr.PodSandboxId], cs)
			}
		}
	}

	var out []statsapi.PodStats
	for _, sb := range currentSandboxes(in.Sandboxes) {
		var cstats []*runtimeapi.ContainerStats
		sst := sandboxStats[sb.Id]
		if in.SandboxStats != nil {
			if sst == nil {
				continue // as the kubelet: a pod is listed when the runtime has stats for it
			}
			cstats = sst.GetLinux().GetContainers()
		} else {
			cstats = containerStats[sb.Id]
			if len(cstats) == 0 {
				continue
			}
		}
		out = append(out, c.pod(sb, sst, cstats, running))
	}
	slices.SortFunc(out, func(a, b statsapi.PodStats) int {
		return cmp.Or(cmp.Compare(a.PodRef.Namespace, b.PodRef.Namespace), cmp.Compare(a.PodRef.Name, b.PodRef.Name))
	})
	return out
}

// currentSandboxes keeps, of the sandboxes of each pod name, the ready ones or
// else the newest (the kubelet's removeTerminatedPods).
func currentSandboxes(all []*runtimeapi.PodSandbox) []*runtimeapi.PodSandbox {
	type key struct{ ns, name string }
	byPod := map[key][]*runtimeapi.PodSandbox{}
	var order []key
	for _, sb := range all {
		if sb.GetMetadata() == nil {
			continue
		}
		k := key{sb.Metadata.Namespace, sb.Metadata.Name}
		if _, ok := byPod[k]; !ok {
			order = append(order, k)
		}
		byPod[k] = append(byPod[k], sb)
	}
	var out []*runtimeapi.PodSandbox
	for _, k := range order {
		sbs := byPod[k]
		newest := sbs[0]
		found := false
		for _, sb := range sbs {
			if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				out = append(out, sb)
				found = true
			}
			if sb.CreatedAt > newest.CreatedAt {
				newest = sb
			}
		}
		if !found {
			out = append(out, newest)
		}
	}
	return out
}

type converter struct {
	o  PodOptions
	fs map[string]*fsInfo // statfs by path, once per call
}

func (c *converter) statFs(path string) *fsInfo {
	if path == "" {
		return nil
	}
	if fi, ok := c.fs[path]; ok {
		return fi
	}
	fi, err := statFs(path)
	if err != nil {
		fi = nil
	}
	c.fs[path] = fi
	return fi
}

func (c *converter) pod(sb *runtimeapi.PodSandbox, sst *runtimeapi.PodSandboxStats, cstats []*runtimeapi.ContainerStats, running map[string]*runtimeapi.Container) statsapi.PodStats {
	md := sb.Metadata
	ps := statsapi.PodStats{
		PodRef:     statsapi.PodReference{Name: md.Name, Namespace: md.Namespace, UID: md.Uid},
		StartTime:  metav1.NewTime(time.Unix(0, sb.CreatedAt)),
		Containers: []statsapi.ContainerStats{},
	}
	logDir := ""
	if c.o.PodLogsDir != "" {
		logDir = filepath.Join(c.o.PodLogsDir, md.Namespace+"_"+md.Name+"_"+md.Uid)
	}
	for _, cs := range cstats {
		ctr := running[cs.GetAttributes().GetId()]
		if ctr == nil {
			continue
		}
		ps.Containers = append(ps.Containers, c.container(cs, ctr, logDir))
	}
	slices.SortFunc(ps.Containers, func(a, b statsapi.ContainerStats) int { return cmp.Compare(a.Name, b.Name) })

	if l := sst.GetLinux(); l != nil {
		if cpu := l.Cpu; cpu != nil {
			ps.CPU = &statsapi.CPUStats{
				Time:                 nanoTime(cpu.Timestamp),
				UsageNanoCores:       value(cpu.UsageNanoCores),
				UsageCoreNanoSeconds: value(cpu.UsageCoreNanoSeconds),
				PSI:                  psi(cpu.Psi),
			}
		}
		if m := l.Memory; m != nil {
			ps.Memory = memory(m)
		}
		if n := l.Network; n != nil {
			ps.Network = &statsapi.NetworkStats{
				Time:           nanoTime(n.Timestamp),
				InterfaceStats: iface(n.DefaultInterface),
				Interfaces:     make([]statsapi.InterfaceStats, 0, len(n.Interfaces)),
			}
			for _, i := range n.Interfaces {
				ps.Network.Interfaces = append(ps.Network.Interfaces, iface(i))
			}
		}
		if p := l.Process; p != nil {
			ps.ProcessStats = &statsapi.ProcessStats{ProcessCount: value(p.ProcessCount)}
		}
		if io := l.Io; io != nil {
			ps.IO = &statsapi.IOStats{Time: nanoTime(io.Timestamp), PSI: psi(io.Psi)}
		}
	}
	if ps.CPU == nil || ps.Memory == nil {
		sumContainers(&ps)
	}
	ps.EphemeralStorage = c.ephemeral(ps.Containers, logDir)
	return ps
}

// container maps one container's CRI stats (the kubelet's makeContainerStats;
// the memory figures cAdvisor would add are taken from the CRI too).
func (c *converter) container(cs *runtimeapi.ContainerStats, ctr *runtimeapi.Container, podLogDir string) statsapi.ContainerStats {
	now := metav1.NewTime(c.o.Now)
	name := cs.GetAttributes().GetMetadata().GetName()
	if name == "" {
		name = ctr.GetMetadata().GetName()
	}
	out := statsapi.ContainerStats{
		Name:      name,
		StartTime: metav1.NewTime(time.Unix(0, ctr.CreatedAt)),
		CPU:       &statsapi.CPUStats{Time: now, UsageCoreNanoSeconds: ptr[uint64](0), UsageNanoCores: ptr[uint64](0)},
		Memory:    &statsapi.MemoryStats{Time: now, WorkingSetBytes: ptr[uint64](0)},
		Swap:      &statsapi.SwapStats{Time: now, SwapUsageBytes: ptr[uint64](0), SwapAvailableBytes: ptr[uint64](0)},
		Rootfs:    &statsapi.FsStats{},
	}
	if cpu := cs.Cpu; cpu != nil {
		out.CPU = &statsapi.CPUStats{
			Time:                 nanoTime(cpu.Timestamp),
			UsageCoreNanoSeconds: value(cpu.UsageCoreNanoSeconds),
			UsageNanoCores:       value(cpu.UsageNanoCores),
			PSI:                  psi(cpu.Psi),
		}
	}
	if m := cs.Memory; m != nil {
		out.Memory = memory(m)
	}
	if s := cs.Swap; s != nil {
		out.Swap = &statsapi.SwapStats{
			Time:               nanoTime(s.Timestamp),
			SwapUsageBytes:     value(s.SwapUsageBytes),
			SwapAvailableBytes: value(s.SwapAvailableBytes),
		}
	}
	if io := cs.Io; io != nil {
		out.IO = &statsapi.IOStats{Time: nanoTime(io.Timestamp), PSI: psi(io.Psi)}
	}
	if wl := cs.WritableLayer; wl != nil {
		out.Rootfs.Time = nanoTime(wl.Timestamp)
		out.Rootfs.UsedBytes = value(wl.UsedBytes)
		out.Rootfs.InodesUsed = value(wl.InodesUsed)
		if fi := c.statFs(wl.GetFsId().GetMountpoint()); fi != nil {
			fi.fill(out.Rootfs)
		}
	}
	if podLogDir != "" {
		out.Logs = c.logs(filepath.Join(podLogDir, name))
	}
	return out
}

// logs is the usage of a container's log directory, on the log filesystem.
func (c *converter) logs(dir string) *statsapi.FsStats {
	u, err := diskusage.Measure(dir)
	if err != nil {
		return nil
	}
	fs := &statsapi.FsStats{Time: metav1.NewTime(c.o.Now), UsedBytes: ptr(u.Bytes), InodesUsed: ptr(u.Inodes)}
	if fi := c.statFs(c.o.PodLogsDir); fi != nil {
		fi.fill(fs)
	}
	return fs
}

// ephemeral is the kubelet's calcEphemeralStorage without volumes: writable
// layers plus logs, on the capacity of the log filesystem.
func (c *converter) ephemeral(containers []statsapi.ContainerStats, logDir string) *statsapi.FsStats {
	es := &statsapi.FsStats{Time: metav1.NewTime(c.o.Now)}
	if fi := c.statFs(c.o.PodLogsDir); fi != nil {
		fi.fill(es)
	}
	for _, ctr := range containers {
		if ctr.Rootfs == nil {
			continue
		}
		es.UsedBytes = add(es.UsedBytes, ctr.Rootfs.UsedBytes)
		es.InodesUsed = add(es.InodesUsed, ctr.Rootfs.InodesUsed)
		if ctr.Logs != nil {
			es.UsedBytes = add(es.UsedBytes, ctr.Logs.UsedBytes)
			es.InodesUsed = add(es.InodesUsed, ctr.Logs.InodesUsed)
		}
	}
	return es
}

// sumContainers fills the pod's missing CPU and memory with its containers'
// totals (the kubelet's fallback without pod cgroup stats).
func sumContainers(ps *statsapi.PodStats) {
	needCPU, needMem := ps.CPU == nil, ps.Memory == nil
	for _, cs := range ps.Containers {
		if needCPU && cs.CPU != nil {
			if ps.CPU == nil {
				ps.CPU = &statsapi.CPUStats{}
			}
			ps.CPU.Time = cs.CPU.Time
			ps.CPU.UsageCoreNanoSeconds = sum(ps.CPU.UsageCoreNanoSeconds, cs.CPU.UsageCoreNanoSeconds)
			ps.CPU.UsageNanoCores = sum(ps.CPU.UsageNanoCores, cs.CPU.UsageNanoCores)
		}
		if needMem && cs.Memory != nil {
			if ps.Memory == nil {
				ps.Memory = &statsapi.MemoryStats{}
			}
			m := ps.Memory
			m.Time = cs.Memory.Time
			m.AvailableBytes = sum(m.AvailableBytes, cs.Memory.AvailableBytes)
			m.UsageBytes = sum(m.UsageBytes, cs.Memory.UsageBytes)
			m.WorkingSetBytes = sum(m.WorkingSetBytes, cs.Memory.WorkingSetBytes)
			m.RSSBytes = sum(m.RSSBytes, cs.Memory.RSSBytes)
			m.PageFaults = sum(m.PageFaults, cs.Memory.PageFaults)
			m.MajorPageFaults = sum(m.MajorPageFaults, cs.Memory.MajorPageFaults)
		}
	}
}

// sum adds as the kubelet's pod totals do: a missing figure counts as zero.
func sum(a, b *uint64) *uint64 {
	var v uint64
	if a != nil {
		v = *a
	}
	if b != nil {
		v += *b
	}
	return &v
}

// add adds b to a; nil plus nil stays nil (the kubelet's addUsage).
func add(a, b *uint64) *uint64 {
	if b == nil {
		return a
	}
	if a == nil {
		return ptr(*b)
	}
	return ptr(*a + *b)
}

func memory(m *runtimeapi.MemoryUsage) *statsapi.MemoryStats {
	return &statsapi.MemoryStats{
		Time:            nanoTime(m.Timestamp),
		AvailableBytes:  value(m.AvailableBytes),
		UsageBytes:      value(m.UsageBytes),
		WorkingSetBytes: value(m.WorkingSetBytes),
		RSSBytes:        value(m.RssBytes),
		PageFaults:      value(m.PageFaults),
		MajorPageFaults: value(m.MajorPageFaults),
		PSI:             psi(m.Psi),
	}
}

func iface(i *runtimeapi.NetworkInterfaceUsage) statsapi.InterfaceStats {
	if i == nil {
		return statsapi.InterfaceStats{}
	}
	return statsapi.InterfaceStats{
		Name:     i.Name,
		RxBytes:  value(i.RxBytes),
		RxErrors: value(i.RxErrors),
		TxBytes:  value(i.TxBytes),
		TxErrors: value(i.TxErrors),
	}
}

func psi(p *runtimeapi.PsiStats) *statsapi.PSIStats {
	if p == nil {
		return nil
	}
	out := &statsapi.PSIStats{}
	if f := p.Full; f != nil {
		out.Full = statsapi.PSIData{Total: f.Total, Avg10: f.Avg10, Avg60: f.Avg60, Avg300: f.Avg300}
	}
	if s := p.Some; s != nil {
		out.Some = statsapi.PSIData{Total: s.Total, Avg10: s.Avg10, Avg60: s.Avg60, Avg300: s.Avg300}
	}
	return out
}

func value(v *runtimeapi.UInt64Value) *uint64 {
	if v == nil {
		return nil
	}
	return ptr(v.Value)
}

func nanoTime(ns int64) metav1.Time { return metav1.NewTime(time.Unix(0, ns)) }
