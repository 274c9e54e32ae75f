package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"

	"github.com/nodekit-dev/nodekit/agent/qos"
	"github.com/nodekit-dev/nodekit/agent/stats"
)

// cgroupFile reads a control file of the cgroup at path in a v1 controller's
// hierarchy (this machine's cgroups are v1).
func cgroupFile(t *testing.T, controller, path, file string) (string, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, path, file))
	return strings.TrimSpace(string(data)), err
}

func mustCgroupFile(t *testing.T, controller, path, file string) string {
	t.Helper()
	v, err := cgroupFile(t, controller, path, file)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func withResources(c v1.Container, requests, limits string) v1.Container {
	parse := func(s string) v1.ResourceList {
		out := v1.ResourceList{}
		for _, kv := range strings.Split(s, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				out[v1.ResourceName(k)] = resource.MustParse(v)
			}
		}
		return out
	}
	c.Resources = v1.ResourceRequirements{Requests: parse(requests), Limits: parse(limits)}
	return c
}

// Pod cgroups on this machine's real cgroups (v1, cgroupfs driver): kubepods
// limited to node allocatable, each pod in its QoS tier with the kubelet's cpu
// shares, CFS quota, memory limit and pids limit, the burstable tier's shares
// following the pods, every pod cgroup gone after its pod.
func TestE2EPodCgroups(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(k *kubeletconfig.KubeletConfiguration) {
		pids := int64(300)
		k.PodPidsLimit = &pids
		k.KubeReserved = map[string]string{"cpu": "500m", "memory": "512Mi"}
		k.SystemReserved = map[string]string{"memory": "256Mi"}
	}})
	kubepods := h.cgroupRoot + "/kubepods"
	waitFor(t, "kubepods and its tiers", time.Minute, func() bool {
		_, err := cgroupFile(t, "cpu", kubepods+"/besteffort", "cpu.shares")
		return err == nil
	})

	// kubepods: allocatable without the eviction threshold (capacity − reserved).
	memTotal := readMemTotal(t)
	wantLimit := memTotal - (512+256)<<20
	// The kernel rounds the limit down to a page.
	wantLimit -= wantLimit % int64(os.Getpagesize())
	if got := mustCgroupFile(t, "memory", kubepods, "memory.limit_in_bytes"); got != strconv.FormatInt(wantLimit, 10) {
		t.Errorf("kubepods memory.limit_in_bytes = %s, want %d (MemTotal %d − 768Mi reserved)", got, wantLimit, memTotal)
	}
	mi, err := stats.NewNode(stats.NodeOptions{FsPath: "/"}).Machine()
	if err != nil {
		t.Fatal(err)
	}
	cpus := mi.NumCores
	if got, want := mustCgroupFile(t, "cpu", kubepods, "cpu.shares"), qos.MilliCPUToShares(int64(cpus)*1000-500); got != fmt.Sprint(want) {
		t.Errorf("kubepods cpu.shares = %s, want %d", got, want)
	}

	guaranteed := h.testPod("guaranteed", withResources(shell("main", idle), "cpu=250m,memory=64Mi", "cpu=250m,memory=64Mi"))
	burstable := h.testPod("burstable", withResources(shell("main", idle), "cpu=100m,memory=32Mi", "cpu=200m,memory=128Mi"),
		withResources(shell("side", idle), "cpu=150m", ""))
	besteffort := h.testPod("besteffort", shell("main", idle))
	for _, p := range []*v1.Pod{guaranteed, burstable, besteffort} {
		h.writeManifest(p)
	}
	uids := map[string]string{}
	for _, name := range []string{"guaranteed", "burstable", "besteffort"} {
		p := h.waitPod(name, "running", time.Minute, running)
		uids[name] = string(p.UID)
	}
	g := kubepods + "/pod" + uids["guaranteed"]
	b := kubepods + "/burstable/pod" + uids["burstable"]
	e := kubepods + "/besteffort/pod" + uids["besteffort"]
	for _, c := range []struct{ controller, path, file, want string }{
		{"cpu", g, "cpu.shares", "256"},
		{"cpu", g, "cpu.cfs_quota_us", "25000"},
		{"cpu", g, "cpu.cfs_period_us", "100000"},
		{"memory", g, "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
		{"pids", g, "pids.max", "300"},
		// Burstable: shares from the requests (250m); no quota and no memory
		// limit, as the side container limits neither.
		{"cpu", b, "cpu.shares", "256"},
		{"cpu", b, "cpu.cfs_quota_us", "-1"},
		{"pids", b, "pids.max", "300"},
		{"cpu", e, "cpu.shares", "2"},
		{"pids", e, "pids.max", "300"},
		{"cpu", kubepods + "/besteffort", "cpu.shares", "2"},
	} {
		if got := mustCgroupFile(t, c.controller, c.path, c.file); got != c.want {
			t.Errorf("%s %s = %s, want %s", c.path, c.file, got, c.want)
		}
	}
	if got := mustCgroupFile(t, "memory", b, "memory.limit_in_bytes"); got != "9223372036854771712" {
		t.Errorf("burstable pod without memory limits everywhere has memory.limit_in_bytes %s, want unlimited", got)
	}
	// The containers run inside their pod's cgroup.
	if procs := mustCgroupFile(t, "pids", g, "pids.current"); procs == "0" {
		t.Errorf("no process in the guaranteed pod's cgroup")
	}
	// The burstable tier's shares follow the burstable pods' CPU requests.
	waitFor(t, "burstable tier cpu.shares 256", time.Minute, func() bool {
		v, _ := cgroupFile(t, "cpu", kubepods+"/burstable", "cpu.shares")
		return v == "256"
	})

	h.removeManifest("burstable")
	waitFor(t, "the burstable pod's cgroup removed and the tier's shares back to 2", time.Minute, func() bool {
		_, err := cgroupFile(t, "cpu", b, "cpu.shares")
		v, _ := cgroupFile(t, "cpu", kubepods+"/burstable", "cpu.shares")
		return os.IsNotExist(err) && v == "2"
	})
	// Every controller's directory goes, not just cpu's.
	for _, c := range []string{"memory", "pids", "cpuset", "freezer", "unified"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, b)); !os.IsNotExist(err) {
			t.Errorf("%s cgroup of the removed pod still there: %v", c, err)
		}
	}
	// The rest goes when the agent stops them (harness cleanup: leak check).
}

func readMemTotal(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal")
	return 0
}
