package stats

import (
	"fmt"
	"runtime"
	"sync"

	cadvisorcontainer "github.com/google/cadvisor/lib/container"
	"github.com/google/cadvisor/lib/container/common"
	"github.com/google/cadvisor/lib/container/libcontainer"
	"github.com/google/cadvisor/lib/machine"
	cadvisorapi "github.com/google/cadvisor/lib/model"
	"github.com/google/cadvisor/lib/utils/sysfs"
	"github.com/opencontainers/cgroups"
)

// hostSource reads the host through cAdvisor's packages, without its manager
// (no housekeeping, no container runtime plugins): a cgroup is read by
// cAdvisor's libcontainer handler and its spec by common.GetSpec, as
// cAdvisor's raw container handler does, and the machine by machine.Info.
type hostSource struct {
	subsystems map[string]string // controller → mount point; "" → the unified mount on cgroup v2
	metrics    cadvisorcontainer.MetricSet

	mu       sync.Mutex // over handlers and their reads
	handlers map[string]*cgroupHandler

	machineMu sync.Mutex // machine.Info stats every filesystem: not under mu
	mi        *cadvisorapi.MachineInfo
	vi        *cadvisorapi.VersionInfo
}

type cgroupHandler struct {
	paths map[string]string // controller → cgroup directory
	h     *libcontainer.Handler
}

func newHostSource() (nodeSource, error) {
	metrics := cadvisorcontainer.MetricSet{
		cadvisorcontainer.CpuUsageMetrics:     {},
		cadvisorcontainer.MemoryUsageMetrics:  {},
		cadvisorcontainer.NetworkUsageMetrics: {}, // read for the root only (pid 1)
	}
	if cgroups.IsCgroup2UnifiedMode() {
		metrics[cadvisorcontainer.DiskIOMetrics] = struct{}{} // for io.pressure; v1 has no PSI
	}
	subsystems, err := libcontainer.GetCgroupSubsystems(metrics)
	if err != nil {
		return nil, fmt.Errorf("cgroup mounts: %w", err)
	}
	if len(subsystems) == 0 {
		return nil, fmt.Errorf("no cgroup mounts for cpu and memory")
	}
	return &hostSource{subsystems: subsystems, metrics: metrics, handlers: map[string]*cgroupHandler{}}, nil
}

func (s *hostSource) cgroup(name string) (cadvisorapi.ContainerSpec, *cadvisorapi.ContainerStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	root := name == "/"
	ch := s.handlers[name]
	if ch == nil {
		paths := common.MakeCgroupPaths(s.subsystems, name)
		mgr, err := libcontainer.NewCgroupManager(name, paths)
		if err != nil {
			return cadvisorapi.ContainerSpec{}, nil, err
		}
		pid := 0
		if root {
			pid = 1 // the root's network is pid 1's
		}
		ch = &cgroupHandler{paths: paths, h: libcontainer.NewHandler(mgr, "/", pid, s.metrics)}
		s.handlers[name] = ch
	}
	if !common.CgroupExists(ch.paths) {
		return cadvisorapi.ContainerSpec{}, nil, fmt.Errorf("%s: %w", name, errNoCgroup)
	}
	spec, err := common.GetSpec(ch.paths, specMachine{}, root, false)
	if err != nil {
		return spec, nil, err
	}
	if root {
		// cAdvisor's raw handler: the root's limits are the machine's memory and swap.
		limit, err := machine.GetMachineMemoryCapacity()
		if err != nil {
			return spec, nil, fmt.Errorf("machine memory: %w", err)
		}
		spec.HasMemory, spec.Memory.Limit = true, limit
		if swap, err := machine.GetMachineSwapCapacity(); err == nil {
			spec.Memory.SwapLimit = swap
		}
	}
	st, err := ch.h.GetStats()
	if err != nil {
		return spec, nil, err
	}
	return spec, st, nil
}

// specMachine is the MachineInfoFactory common.GetSpec wants; it takes only
// the number of cores from it, for the cpu mask, which is not reported.
type specMachine struct{}

func (specMachine) GetMachineInfo() (*cadvisorapi.MachineInfo, error) {
	return &cadvisorapi.MachineInfo{NumCores: runtime.NumCPU()}, nil
}

func (specMachine) GetVersionInfo() (*cadvisorapi.VersionInfo, error) {
	return &cadvisorapi.VersionInfo{}, nil
}

func (s *hostSource) machine() (*cadvisorapi.MachineInfo, *cadvisorapi.VersionInfo, error) {
	s.machineMu.Lock()
	defer s.machineMu.Unlock()
	if s.mi == nil {
		fsi, err := hostFs.fsInfo()
		if err != nil {
			return nil, nil, fmt.Errorf("filesystems: %w", err)
		}
		mi, err := machine.Info(sysfs.NewRealSysFs(), fsi, true)
		if err != nil {
			return nil, nil, err
		}
		if mi.NumCores == 0 {
			// cAdvisor counts cores from the sysfs topology; without it, the
			// CPUs the Go runtime sees.
			mi.NumCores = runtime.NumCPU()
		}
		// cAdvisor's manager's VersionInfo, which the kubelet's node status takes
		s.mi, s.vi = mi, &cadvisorapi.VersionInfo{KernelVersion: machine.KernelVersion(), ContainerOsVersion: machine.ContainerOsVersion()}
	}
	return s.mi, s.vi, nil
}
