package cri_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerStats fetches one container's stats.
func (h *harness) containerStats(id string) *runtime.ContainerStats {
	h.t.Helper()
	resp, err := h.rt.ContainerStats(ctx(h.t), &runtime.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.Stats
}

// runContainer creates and starts a container and waits until it runs.
func (h *harness) runContainer(pod string, podCfg *runtime.PodSandboxConfig, cfg *runtime.ContainerConfig) string {
	h.t.Helper()
	id := h.createContainer(pod, podCfg, cfg)
	h.startContainer(id)
	h.waitState(id, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	return id
}

// cgroupFile returns the path of a cgroup file of a container (cgroupfs driver):
// its cgroup is linux.cgroupsPath of the bundle's config.json. controller is the
// v1 hierarchy; on cgroup v2 it is ignored.
func (h *harness) cgroupFile(id, controller, file string) string {
	h.t.Helper()
	resp, err := h.rt.ContainerStatus(ctx(h.t), &runtime.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		h.t.Fatal(err)
	}
	var info struct {
		Bundle string `json:"bundle"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		h.t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(info.Bundle, "config.json"))
	if err != nil {
		h.t.Fatal(err)
	}
	var sp specs.Spec
	if err := json.Unmarshal(data, &sp); err != nil {
		h.t.Fatal(err)
	}
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return filepath.Join("/sys/fs/cgroup", sp.Linux.CgroupsPath, file)
	}
	return filepath.Join("/sys/fs/cgroup", controller, sp.Linux.CgroupsPath, file)
}

func readCgroupInt(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Fields(string(data))[0] // cpu.max holds "quota period"
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// A container burning CPU shows growing CPU time and a CPU rate; one holding
// 20 MB shows it in its working set; a write to the writable layer shows there.
func TestContainerStatsMove(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod, podCfg := h.runPod("stats")

	// The loop keeps the shell (and its 20 MB variable) alive: ash would exec a
	// final plain command in its place.
	memCfg := containerConfig("mem", busybox, "sh", "-c", `x=$(head -c 20000000 /dev/zero | tr "\0" a); echo held; while :; do sleep 1000; done`)
	memCfg.Linux.Resources = &runtime.LinuxContainerResources{MemoryLimitInBytes: 256 << 20}
	mem := h.runContainer(pod, podCfg, memCfg)
	idle := h.createContainer(pod, podCfg, containerConfig("idle", busybox, "sleep", "1000"))

	// Memory: the 20 MB string is in the working set; a limit gives available bytes.
	memLog := h.status(mem).LogPath
	waitFor(t, "the memory container to hold its 20 MB", time.Minute, func() bool {
		data, _ := os.ReadFile(memLog)
		return strings.Contains(string(data), "held")
	})
	m := h.containerStats(mem).Memory
	if m.GetWorkingSetBytes().GetValue() < 15e6 || m.UsageBytes.Value < m.WorkingSetBytes.Value || m.RssBytes.Value < 15e6 || m.PageFaults.Value == 0 {
		t.Errorf("memory stats of a container holding 20 MB: %v", m)
	}
	if a := m.GetAvailableBytes().GetValue(); a == 0 || a > 256<<20-15e6 {
		t.Errorf("available bytes = %d under a 256 MiB limit with %d in use", a, m.WorkingSetBytes.Value)
	}

	burn := h.runContainer(pod, podCfg, containerConfig("burn", busybox, "sh", "-c", "while :; do :; done"))

	// CPU: cumulative time grows, and from the second sample on there is a rate.
	first := h.containerStats(burn)
	if first.Cpu == nil || first.Attributes.Id != burn || first.Attributes.Metadata.Name != "burn" || first.Attributes.Labels["container"] != "burn" {
		t.Fatalf("stats of a running container: %v", first)
	}
	var rate uint64
	waitFor(t, "CPU time and rate of a busy container", time.Minute, func() bool {
		cur := h.containerStats(burn)
		rate = cur.Cpu.GetUsageNanoCores().GetValue()
		return cur.Cpu.UsageCoreNanoSeconds.Value > first.Cpu.UsageCoreNanoSeconds.Value+100e6 && rate > 50e6
	})
	t.Logf("busy loop: %.2f cores", float64(rate)/1e9)

	// Writable layer: 8 MiB written into the container's root file system.
	before := h.containerStats(mem).WritableLayer
	if before.GetFsId().GetMountpoint() == "" || before.GetInodesUsed().GetValue() == 0 {
		t.Fatalf("writable layer: %v", before)
	}
	r, err := h.rt.ExecSync(ctx(t), &runtime.ExecSyncRequest{ContainerId: mem, Cmd: []string{"sh", "-c", "dd if=/dev/zero of=/big bs=1M count=8 && sync"}, Timeout: 30})
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("write into the container: %v %s", err, r.GetStderr())
	}
	waitFor(t, "the writable layer to grow by 8 MiB", 30*time.Second, func() bool {
		w := h.containerStats(mem).WritableLayer
		return w.UsedBytes.Value >= before.UsedBytes.Value+8<<20 && w.InodesUsed.Value > before.InodesUsed.Value
	})

	// A created container has no cgroup yet: attributes and layer only.
	if s := h.containerStats(idle); s.Cpu != nil || s.Memory != nil || s.WritableLayer == nil || s.Attributes.Id != idle {
		t.Errorf("stats of a created container: %v", s)
	}
	_, err = h.rt.ContainerStats(ctx(t), &runtime.ContainerStatsRequest{ContainerId: "feedface"})
	wantCode(t, "stats of an unknown container", err, codes.NotFound, "feedface")
}

// Pod stats: CPU, memory, processes and traffic of the pod, with its containers.
// Filters of the list calls work like ListContainers'. Metrics follow the
// descriptors.
func TestPodSandboxStatsAndFilters(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	podA, cfgA := h.runPod("pod-a")
	podB, cfgB := h.runPod("pod-b")
	a1 := h.runContainer(podA, cfgA, containerConfig("a1", busybox, "sleep", "1000"))
	a2 := h.runContainer(podA, cfgA, containerConfig("a2", busybox, "sleep", "1000"))
	b1 := h.runContainer(podB, cfgB, containerConfig("b1", busybox, "sleep", "1000"))

	listIDs := func(f *runtime.ContainerStatsFilter) []string {
		resp, err := h.rt.ListContainerStats(ctx(t), &runtime.ListContainerStatsRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range resp.Stats {
			if s.Cpu == nil || s.Memory == nil {
				t.Errorf("running container %s listed without CPU or memory", s.Attributes.Id)
			}
			ids = append(ids, s.Attributes.Id)
		}
		return ids
	}
	for name, c := range map[string]struct {
		f    *runtime.ContainerStatsFilter
		want []string
	}{
		"all":         {nil, []string{a1, a2, b1}},
		"id prefix":   {&runtime.ContainerStatsFilter{Id: a2[:10]}, []string{a2}},
		"sandbox":     {&runtime.ContainerStatsFilter{PodSandboxId: podA}, []string{a1, a2}},
		"sandbox pre": {&runtime.ContainerStatsFilter{PodSandboxId: podB[:8]}, []string{b1}},
		"label":       {&runtime.ContainerStatsFilter{LabelSelector: map[string]string{"container": "a1"}}, []string{a1}},
		"no match":    {&runtime.ContainerStatsFilter{LabelSelector: map[string]string{"container": "zz"}}, nil},
	} {
		got := listIDs(c.f)
		if !sameSet(got, c.want) {
			t.Errorf("ListContainerStats(%s) = %v, want %v", name, got, c.want)
		}
	}

	// Traffic in the pod's network namespace, on interfaces of the test's own (a
	// veth pair inside the namespace, gone with it): pinging an absent address
	// sends ARP requests.
	netns := h.sandboxNetNS(podA)
	out, err := exec.Command("nsenter", "--net="+netns, "sh", "-c",
		"ip link add nkstat0 type veth peer name nkstat1 && ip addr add 10.251.7.1/24 dev nkstat0 && "+
			"ip link set nkstat1 up && ip link set nkstat0 up && "+
			"(/bin/busybox ping -c 2 -W 1 10.251.7.2 >/dev/null 2>&1; true)").CombinedOutput()
	if err != nil {
		t.Fatalf("make traffic in the pod network namespace: %v\n%s", err, out)
	}

	resp, err := h.rt.PodSandboxStats(ctx(t), &runtime.PodSandboxStatsRequest{PodSandboxId: podA})
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.Stats
	if ps.Attributes.Id != podA || ps.Attributes.Metadata.Name != "pod-a" || ps.Attributes.Labels["pod"] != "pod-a" {
		t.Errorf("pod attributes: %v", ps.Attributes)
	}
	l := ps.Linux
	if l.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 || l.GetMemory().GetUsageBytes().GetValue() == 0 || l.GetProcess().GetProcessCount().GetValue() < 2 {
		t.Errorf("pod cpu %v memory %v processes %v", l.GetCpu(), l.GetMemory(), l.GetProcess())
	}
	var ctrs []string
	for _, c := range l.Containers {
		ctrs = append(ctrs, c.Attributes.Id)
	}
	if !sameSet(ctrs, []string{a1, a2}) {
		t.Errorf("pod containers = %v, want %v", ctrs, []string{a1, a2})
	}
	var dummy *runtime.NetworkInterfaceUsage
	for _, i := range l.GetNetwork().GetInterfaces() {
		if i.Name == "lo" {
			t.Errorf("loopback reported: %v", i)
		}
		if i.Name == "nkstat0" {
			dummy = i
		}
	}
	if dummy == nil || dummy.TxBytes.Value == 0 || l.Network.DefaultInterface == nil {
		t.Errorf("pod network = %v, want nkstat0 with transmitted bytes", l.GetNetwork())
	}

	listPods := func(f *runtime.PodSandboxStatsFilter) []string {
		resp, err := h.rt.ListPodSandboxStats(ctx(t), &runtime.ListPodSandboxStatsRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range resp.Stats {
			ids = append(ids, s.Attributes.Id)
		}
		return ids
	}
	if got := listPods(nil); !sameSet(got, []string{podA, podB}) {
		t.Errorf("ListPodSandboxStats() = %v", got)
	}
	if got := listPods(&runtime.PodSandboxStatsFilter{Id: podB[:9]}); !sameSet(got, []string{podB}) {
		t.Errorf("ListPodSandboxStats(id prefix) = %v", got)
	}
	if got := listPods(&runtime.PodSandboxStatsFilter{LabelSelector: map[string]string{"pod": "pod-a"}}); !sameSet(got, []string{podA}) {
		t.Errorf("ListPodSandboxStats(label) = %v", got)
	}

	// Metrics: every one described, per container and per pod interface.
	descs, err := h.rt.ListMetricDescriptors(ctx(t), &runtime.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, d := range descs.Descriptors {
		keys[d.Name] = len(d.LabelKeys)
	}
	mresp, err := h.rt.ListPodSandboxMetrics(ctx(t), &runtime.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, pm := range mresp.PodMetrics {
		check := func(m *runtime.Metric) {
			if n, ok := keys[m.Name]; !ok || n != len(m.LabelValues) {
				t.Errorf("metric %s with labels %v does not match its descriptor", m.Name, m.LabelValues)
			}
		}
		for _, m := range pm.Metrics {
			check(m)
			if pm.PodSandboxId == podA && m.Name == "container_network_transmit_bytes_total" && m.LabelValues[2] == "nkstat0" && m.Value.Value > 0 {
				found["network"] = true
			}
		}
		for _, cm := range pm.ContainerMetrics {
			for _, m := range cm.Metrics {
				check(m)
				if m.Name == "container_memory_working_set_bytes" && m.Value.Value > 0 {
					found[cm.ContainerId] = true
				}
			}
		}
	}
	for _, want := range []string{"network", a1, a2, b1} {
		if !found[want] {
			t.Errorf("ListPodSandboxMetrics lacks %s", want)
		}
	}

	// A stopped pod has no stats; an unknown one is not found.
	if _, err := h.rt.StopPodSandbox(ctx(t), &runtime.StopPodSandboxRequest{PodSandboxId: podB}); err != nil {
		t.Fatal(err)
	}
	_, err = h.rt.PodSandboxStats(ctx(t), &runtime.PodSandboxStatsRequest{PodSandboxId: podB})
	wantCode(t, "stats of a stopped pod", err, codes.FailedPrecondition, podB)
	if got := listPods(nil); !sameSet(got, []string{podA}) {
		t.Errorf("ListPodSandboxStats() after a stop = %v", got)
	}
	_, err = h.rt.PodSandboxStats(ctx(t), &runtime.PodSandboxStatsRequest{PodSandboxId: "feedface"})
	wantCode(t, "stats of an unknown pod", err, codes.NotFound, "feedface")
}

// sandboxNetNS returns the pinned network namespace file of a pod.
func (h *harness) sandboxNetNS(pod string) string {
	h.t.Helper()
	resp, err := h.rt.PodSandboxStatus(ctx(h.t), &runtime.PodSandboxStatusRequest{PodSandboxId: pod, Verbose: true})
	if err != nil {
		h.t.Fatal(err)
	}
	var info struct {
		Namespaces map[string]string `json:"namespaces"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		h.t.Fatal(err)
	}
	if info.Namespaces["net"] == "" {
		h.t.Fatalf("pod %s has no network namespace: %s", pod, resp.Info["info"])
	}
	return info.Namespaces["net"]
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		if m[s] == 0 {
			return false
		}
		m[s]--
	}
	return true
}

// UpdateContainerResources changes a running container's cgroup at once and a
// created container's spec for its start; ContainerStatus reports the result.
func TestUpdateContainerResources(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod, podCfg := h.runPod("update")

	cfg := containerConfig("live", busybox, "sleep", "1000")
	cfg.Linux.Resources = &runtime.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 512}
	live := h.runContainer(pod, podCfg, cfg)
	memFile, quotaFile := "memory.limit_in_bytes", "cpu.cfs_quota_us"
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		memFile, quotaFile = "memory.max", "cpu.max"
	}
	limitPath := h.cgroupFile(live, "memory", memFile)
	if got := readCgroupInt(t, limitPath); got != 64<<20 {
		t.Fatalf("memory limit at start = %d", got)
	}

	update := func(id string, r *runtime.LinuxContainerResources) error {
		_, err := h.rt.UpdateContainerResources(ctx(t), &runtime.UpdateContainerResourcesRequest{ContainerId: id, Linux: r})
		return err
	}
	if err := update(live, &runtime.LinuxContainerResources{MemoryLimitInBytes: 96 << 20, CpuPeriod: 100000, CpuQuota: 50000}); err != nil {
		t.Fatal(err)
	}
	if got := readCgroupInt(t, limitPath); got != 96<<20 {
		t.Errorf("memory limit after the update = %d, want %d", got, 96<<20)
	}
	if got := readCgroupInt(t, h.cgroupFile(live, "cpu", quotaFile)); got != 50000 {
		t.Errorf("cpu quota after the update = %d, want 50000", got)
	}
	r := h.status(live).GetResources().GetLinux()
	if r.GetMemoryLimitInBytes() != 96<<20 || r.GetCpuQuota() != 50000 || r.GetCpuPeriod() != 100000 || r.GetCpuShares() != 512 {
		t.Errorf("status resources after the update = %v", r)
	}

	// Lowering works too (memory and memory+swap change in the right order).
	if err := update(live, &runtime.LinuxContainerResources{MemoryLimitInBytes: 72 << 20}); err != nil {
		t.Fatal(err)
	}
	if got := readCgroupInt(t, limitPath); got != 72<<20 {
		t.Errorf("memory limit after lowering it = %d, want %d", got, 72<<20)
	}
	if err := update(live, &runtime.LinuxContainerResources{MemoryLimitInBytes: 96 << 20}); err != nil {
		t.Fatal(err)
	}

	// Invalid values are refused, naming the field, and change nothing.
	err := update(live, &runtime.LinuxContainerResources{MemoryLimitInBytes: 1 << 20})
	wantCode(t, "a 1 MiB memory limit", err, codes.InvalidArgument, "linux.memory_limit_in_bytes")
	err = update(live, &runtime.LinuxContainerResources{CpuQuota: 10})
	wantCode(t, "a 10 µs CPU quota", err, codes.InvalidArgument, "linux.cpu_quota")
	if got := readCgroupInt(t, limitPath); got != 96<<20 {
		t.Errorf("memory limit after refused updates = %d", got)
	}
	if r := h.status(live).GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 96<<20 {
		t.Errorf("status after refused updates = %v", r)
	}

	// A created container starts with the updated resources.
	created := h.createContainer(pod, podCfg, containerConfig("later", busybox, "sleep", "1000"))
	if err := update(created, &runtime.LinuxContainerResources{MemoryLimitInBytes: 80 << 20}); err != nil {
		t.Fatal(err)
	}
	if r := h.status(created).GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 80<<20 {
		t.Errorf("status of the updated created container = %v", r)
	}
	h.startContainer(created)
	h.waitState(created, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	if got := readCgroupInt(t, h.cgroupFile(created, "memory", memFile)); got != 80<<20 {
		t.Errorf("memory limit of the container started after the update = %d, want %d", got, 80<<20)
	}

	err = update("feedface", &runtime.LinuxContainerResources{CpuShares: 100})
	wantCode(t, "update of an unknown container", err, codes.NotFound, "feedface")
}

// ReopenContainerLog after the log was renamed (log rotation): new output lands
// in a new file at the log path, none in the old one.
func TestReopenContainerLog(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	pod, podCfg := h.runPod("reopen")
	id := h.runContainer(pod, podCfg, containerConfig("talker", busybox, "sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.05; done"))
	logPath := h.status(id).LogPath
	waitFor(t, "the first log lines", 10*time.Second, func() bool {
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), "line 2")
	})

	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := h.rt.ReopenContainerLog(ctx(t), &runtime.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(logPath); err != nil {
		t.Fatalf("no log file at the log path after ReopenContainerLog: %v", err)
	}
	lines := func(p string) int {
		data, _ := os.ReadFile(p)
		return strings.Count(string(data), "\n")
	}
	waitFor(t, "output in the new log file", 10*time.Second, func() bool { return lines(logPath) >= 1 })
	old := lines(rotated)
	waitFor(t, "more output in the new log file", 10*time.Second, func() bool { return lines(logPath) >= 5 })
	if now := lines(rotated); now != old {
		t.Errorf("the rotated log grew from %d to %d lines after the reopen", old, now)
	}
	if !strings.Contains(readLog(t, logPath), " stdout F line ") {
		t.Errorf("new log file holds no CRI log lines:\n%s", readLog(t, logPath))
	}

	// Only a running container has a log to reopen.
	created := h.createContainer(pod, podCfg, containerConfig("quiet", busybox, "sleep", "1000"))
	_, err := h.rt.ReopenContainerLog(ctx(t), &runtime.ReopenContainerLogRequest{ContainerId: created})
	wantCode(t, "reopen for a created container", err, codes.FailedPrecondition, created)
	if _, err := h.rt.StopContainer(ctx(t), &runtime.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = h.rt.ReopenContainerLog(ctx(t), &runtime.ReopenContainerLogRequest{ContainerId: id})
	wantCode(t, "reopen for a stopped container", err, codes.FailedPrecondition, id)
	_, err = h.rt.ReopenContainerLog(ctx(t), &runtime.ReopenContainerLogRequest{ContainerId: "feedface"})
	wantCode(t, "reopen for an unknown container", err, codes.NotFound, "feedface")
}
