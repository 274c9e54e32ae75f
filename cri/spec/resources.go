package spec

import (
	"fmt"
	"maps"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Limits on resource values, below or above which a container cannot start.
const (
	// MinMemoryLimit is the smallest memory limit accepted. runc's own init
	// process is charged to the container's cgroup before the container's
	// process starts: with runc 1.5.2 a 2 MiB limit fails ("unable to set
	// memory limit ... current usage") and 3 MiB just starts a busybox. The
	// request is refused up front instead, with CRI-O's floor of 4 MiB.
	MinMemoryLimit = 4 << 20
	// CPU CFS period bounds in microseconds (the kernel's: 1 ms to 1 s); a
	// quota must also be at least MinCPUPeriod.
	MinCPUPeriod = 1000
	MaxCPUPeriod = 1000000
	// CPU shares bounds (cgroup v1's cpu.shares; runc refuses a value the
	// kernel clamps).
	MinCPUShares = 2
	MaxCPUShares = 262144
)

// setResources maps linux.resources to the spec's cgroup settings. A zero
// value leaves a setting unset. A memory limit also sets swap to the same
// value (no swap) unless the request sets a swap limit, when the host has
// swap accounting (see Host.SwapAccounting).
func setResources(s *specs.Spec, in Input) error {
	r := in.Config.GetLinux().GetResources()
	if r == nil {
		return nil
	}
	const f = "linux.resources."
	res := s.Linux.Resources

	cpu := &specs.LinuxCPU{}
	if p := r.GetCpuPeriod(); p != 0 {
		if p < MinCPUPeriod || p > MaxCPUPeriod {
			return fieldErr(f+"cpu_period", "%d µs is outside [%d, %d]", p, MinCPUPeriod, MaxCPUPeriod)
		}
		v := uint64(p)
		cpu.Period = &v
	}
	if q := r.GetCpuQuota(); q != 0 {
		if q < -1 || (q > 0 && q < MinCPUPeriod) {
			return fieldErr(f+"cpu_quota", "%d: want -1 (no limit) or at least %d µs", q, MinCPUPeriod)
		}
		cpu.Quota = &q
	}
	if sh := r.GetCpuShares(); sh != 0 {
		if sh < MinCPUShares || sh > MaxCPUShares {
			return fieldErr(f+"cpu_shares", "%d is outside [%d, %d]", sh, MinCPUShares, MaxCPUShares)
		}
		v := uint64(sh)
		cpu.Shares = &v
	}
	if c := r.GetCpusetCpus(); c != "" {
		if err := checkCPUList(c); err != nil {
			return &FieldError{Field: f + "cpuset_cpus", Err: err}
		}
		cpu.Cpus = c
	}
	if m := r.GetCpusetMems(); m != "" {
		if err := checkCPUList(m); err != nil {
			return &FieldError{Field: f + "cpuset_mems", Err: err}
		}
		cpu.Mems = m
	}
	if *cpu != (specs.LinuxCPU{}) {
		res.CPU = cpu
	}

	mem := &specs.LinuxMemory{}
	limit := r.GetMemoryLimitInBytes()
	if limit < 0 || (limit > 0 && limit < MinMemoryLimit) {
		return fieldErr(f+"memory_limit_in_bytes", "%d bytes: want 0 (no limit) or at least %d", limit, MinMemoryLimit)
	}
	if limit > 0 {
		mem.Limit = &limit
	}
	swap := r.GetMemorySwapLimitInBytes()
	switch {
	case swap < -1:
		return fieldErr(f+"memory_swap_limit_in_bytes", "%d: want -1 (no limit), 0 (default) or a byte count", swap)
	case swap > 0 && limit > 0 && swap < limit:
		return fieldErr(f+"memory_swap_limit_in_bytes", "%d is below the memory limit %d (it counts memory plus swap)", swap, limit)
	case swap == 0 && limit > 0:
		swap = limit
	}
	if swap != 0 && in.Host.SwapAccounting {
		mem.Swap = &swap
	}
	if mem.Limit != nil || mem.Swap != nil {
		res.Memory = mem
	}

	for i, h := range r.GetHugepageLimits() {
		if err := checkPageSize(h.GetPageSize()); err != nil {
			return &FieldError{Field: fmt.Sprintf("%shugepage_limits[%d].page_size", f, i), Err: err}
		}
		if in.Host.Hugetlb {
			res.HugepageLimits = append(res.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
		}
	}

	if u := r.GetUnified(); len(u) > 0 {
		if !in.Host.CgroupV2 {
			return fieldErr(f+"unified", "needs cgroup v2; this node runs cgroup v1")
		}
		res.Unified = maps.Clone(u)
	}
	return nil
}

// checkCPUList checks the kernel's list format: "0-3,5,7-8".
func checkCPUList(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || b < a {
			return fmt.Errorf("%q is not a list like 0-3,5", s)
		}
	}
	return nil
}

// checkPageSize checks a hugetlb page size as the cgroup files name it: "2MB", "1GB", "64KB".
func checkPageSize(s string) error {
	num := strings.TrimRight(s, "KMGTPB")
	unit := s[len(num):]
	if _, err := strconv.ParseUint(num, 10, 32); err != nil || num == "" {
		return fmt.Errorf("%q is not a page size like 2MB", s)
	}
	switch unit {
	case "KB", "MB", "GB", "TB", "PB":
		return nil
	}
	return fmt.Errorf("%q is not a page size like 2MB", s)
}
