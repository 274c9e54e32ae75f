package spec

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DetectHost reads the facts Generate needs about this node: the cgroup
// version (statfs of /sys/fs/cgroup), swap accounting and the hugetlb
// controller (their cgroup files), the capabilities this process holds
// (/proc/self/status), its hard RLIMIT_NOFILE, whether AppArmor and SELinux
// are enabled and the kernel release. Call it once at start; the
// runtime (runc) inherits this process's capabilities and limits.
func DetectHost() (Host, error) {
	var h Host
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return h, fmt.Errorf("statfs /sys/fs/cgroup: %w", err)
	}
	h.CgroupV2 = st.Type == unix.CGROUP2_SUPER_MAGIC
	if h.CgroupV2 {
		own, err := ownCgroupV2()
		if err != nil {
			return h, err
		}
		h.SwapAccounting = exists(filepath.Join("/sys/fs/cgroup", own, "memory.swap.max"))
		controllers, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		if err != nil {
			return h, fmt.Errorf("read cgroup controllers: %w", err)
		}
		h.Hugetlb = strings.Contains(" "+strings.TrimSpace(string(controllers))+" ", " hugetlb ")
	} else {
		h.SwapAccounting = exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		h.Hugetlb = exists("/sys/fs/cgroup/hugetlb")
	}

	caps, err := ownCapabilities()
	if err != nil {
		return h, err
	}
	h.Capabilities = caps

	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return h, fmt.Errorf("getrlimit NOFILE: %w", err)
	}
	if lim.Max != unix.RLIM_INFINITY {
		h.MaxNoFile = lim.Max
	}

	// AppArmor as containerd checks it; SELinux when selinuxfs is mounted.
	enabled, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	h.AppArmor = strings.TrimSpace(string(enabled)) == "Y"
	h.SELinux = exists("/sys/fs/selinux/enforce")
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return h, fmt.Errorf("uname: %w", err)
	}
	h.Kernel = unix.ByteSliceToString(uts.Release[:])
	return h, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ownCgroupV2 returns this process's cgroup v2 path ("0::/path" in /proc/self/cgroup).
func ownCgroupV2() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("/proc/self/cgroup has no cgroup v2 entry")
}

// ownCapabilities returns the names of this process's effective capabilities.
func ownCapabilities() ([]string, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, fmt.Errorf("read capabilities: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("parse CapEff %q: %w", v, err)
		}
		return capabilitiesOf(mask), nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/self/status: %w", err)
	}
	return nil, fmt.Errorf("/proc/self/status has no CapEff line")
}
