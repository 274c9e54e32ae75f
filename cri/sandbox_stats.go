package cri

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/cgstats"
	"github.com/nodekit-dev/nodekit/cri/podns"
)

// defaultInterface is the pod interface the kubelet reports as the pod's network.
const defaultInterface = "eth0"

// PodSandboxStats reports a ready pod's CPU, memory and process count (from the
// pod cgroup), its network interfaces' traffic (from its network namespace) and
// the stats of its containers.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtime.PodSandboxStatsRequest) (*runtime.PodSandboxStatsResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("pod_sandbox_id", "empty")
	}
	sb, err := s.objs.sandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	rec := sb.snapshot()
	if rec.State != runtime.PodSandboxState_SANDBOX_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready", rec.ID)
	}
	ps, err := s.podStats(&rec)
	if err != nil {
		return nil, grpcError(codes.Internal, err, "stats of pod sandbox %s", rec.ID)
	}
	return &runtime.PodSandboxStatsResponse{Stats: ps}, nil
}

// podStats reports a sandbox. A pod whose cgroup does not exist yet (no
// container started) uses nothing. The containers' stats are included even when
// the pod's own fail; the first error is returned with what could be read.
func (s *Server) podStats(rec *sandboxRecord) (*runtime.PodSandboxStats, error) {
	ps := &runtime.PodSandboxStats{
		Attributes: &runtime.PodSandboxAttributes{
			Id:          rec.ID,
			Metadata:    rec.Config.GetMetadata(),
			Labels:      rec.Config.GetLabels(),
			Annotations: rec.Config.GetAnnotations(),
		},
		Linux: &runtime.LinuxPodSandboxStats{},
	}
	var errs []error
	path, err := cgstats.Path(rec.Cgroup)
	var st *cgstats.Stats
	var rate *uint64
	if err == nil {
		st, rate, err = s.stats.sample(sandboxStatsKey(rec.ID), path)
		if errors.Is(err, cgstats.ErrNotFound) {
			st, err = &cgstats.Stats{Timestamp: time.Now()}, nil
		}
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("pod cgroup %s: %w", rec.Cgroup, err))
	} else {
		ps.Linux.Cpu = cpuUsage(st, rate)
		ps.Linux.Memory = memoryUsage(st)
		ps.Linux.Process = &runtime.ProcessUsage{Timestamp: st.Timestamp.UnixNano(), ProcessCount: u64(st.Pids.Current)}
		if st.IOPressure != nil {
			ps.Linux.Io = &runtime.IoUsage{Timestamp: st.Timestamp.UnixNano(), Psi: psi(st.IOPressure)}
		}
	}
	if ns := rec.Namespace[string(podns.Net)]; ns != "" {
		ifaces, err := netStats(ns)
		if err != nil {
			errs = append(errs, err)
		} else {
			ps.Linux.Network = networkUsage(ifaces, time.Now())
		}
	}
	for _, c := range s.objs.containersOf(rec.ID) {
		crec := c.snapshot()
		cs, err := s.containerStats(&crec)
		if err != nil {
			errs = append(errs, err)
		}
		ps.Linux.Containers = append(ps.Linux.Containers, cs)
	}
	if len(errs) > 0 {
		return ps, errs[0]
	}
	return ps, nil
}

// ifaceStats is one interface's counters from /proc/net/dev.
type ifaceStats struct {
	name                       string
	rxBytes, rxPackets, rxErrs uint64
	rxDrop                     uint64
	txBytes, txPackets, txErrs uint64
	txDrop                     uint64
}

// networkUsage reports every interface but loopback; eth0, else the first, is
// the default.
func networkUsage(ifaces []ifaceStats, at time.Time) *runtime.NetworkUsage {
	n := &runtime.NetworkUsage{Timestamp: at.UnixNano()}
	for _, i := range ifaces {
		if i.name == "lo" {
			continue
		}
		u := &runtime.NetworkInterfaceUsage{
			Name:     i.name,
			RxBytes:  u64(i.rxBytes),
			RxErrors: u64(i.rxErrs),
			TxBytes:  u64(i.txBytes),
			TxErrors: u64(i.txErrs),
		}
		n.Interfaces = append(n.Interfaces, u)
		if i.name == defaultInterface {
			n.DefaultInterface = u
		}
	}
	if n.DefaultInterface == nil && len(n.Interfaces) > 0 {
		n.DefaultInterface = n.Interfaces[0]
	}
	return n
}

// parseNetDev parses /proc/net/dev: two header lines, then per interface
// "name: rx bytes packets errs drop fifo frame compressed multicast tx bytes
// packets errs drop fifo colls carrier compressed".
func parseNetDev(data []byte) ([]ifaceStats, error) {
	var out []ifaceStats
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			if line <= 2 {
				continue // headers
			}
			return nil, fmt.Errorf("/proc/net/dev line %d: no interface name", line)
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("/proc/net/dev line %d: %d counters, want 16", line, len(f))
		}
		var v [16]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/net/dev line %d: %w", line, err)
			}
			v[i] = n
		}
		out = append(out, ifaceStats{
			name:    strings.TrimSpace(name),
			rxBytes: v[0], rxPackets: v[1], rxErrs: v[2], rxDrop: v[3],
			txBytes: v[8], txPackets: v[9], txErrs: v[10], txDrop: v[11],
		})
	}
	return out, sc.Err()
}
