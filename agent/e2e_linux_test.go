package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/agent/server"
	"github.com/nodekit-dev/nodekit/agent/timeline"
)

// The end-to-end behaviours of issue 4, each on its own shim and agent (see
// harness_linux_test.go). Containers record what happens to them as
// "<what> <uptime>" lines in /host/events, a file of the test's.

func execProbe(cmd ...string) *v1.ProbeHandler {
	return &v1.ProbeHandler{Exec: &v1.ExecAction{Command: cmd}}
}

// TestE2ELivenessRestarts: a container whose exec liveness probe starts
// failing a few seconds after each start is restarted again and again: its
// restartCount grows, each instance is a new container, and the previous one
// is in lastState; the pod's timeline shows the failures, the kill decisions
// with their reason, the restarts and the back-off, in order.
func TestE2ELivenessRestarts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{server: true})
	c := shell("app", `trap 'exit 0' TERM; rec start; touch /tmp/healthy; sleep 2 & wait $!; rm /tmp/healthy; `+idle)
	c.LivenessProbe = &v1.Probe{ProbeHandler: *execProbe("cat", "/tmp/healthy"), PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 1}
	h.writeManifest(h.testPod("liveness", c))

	first := h.waitPod("liveness", "running", time.Minute, running)
	firstID := containerStatus(first, "app").ContainerID
	p := h.waitPod("liveness", "restartCount 2", 90*time.Second, func(p *v1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.RestartCount >= 2 && cs.State.Running != nil
	})
	cs := containerStatus(p, "app")
	if cs.ContainerID == firstID {
		t.Errorf("container %s was not replaced", firstID)
	}
	if cs.LastTerminationState.Terminated == nil {
		t.Errorf("no lastState.terminated after a liveness restart: %+v", cs.LastTerminationState)
	}
	// Running comes before the shell's first line.
	waitFor(t, "the third instance's start line", 30*time.Second, func() bool { return len(h.hostEvents()) >= 3 })
	// Every instance was stopped by the agent (its TERM trap exits 0), none
	// crashed by itself.
	for _, s := range h.events.instances(p.UID, "app") {
		if s.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED && s.GetExitCode() != 0 {
			t.Errorf("instance %d exited with %d, want 0 (stopped through SIGTERM)", s.GetMetadata().GetAttempt(), s.GetExitCode())
		}
	}
	if n := probeCount(t, h, "Liveness", "failed"); n < 2 {
		t.Errorf("prober_probe_total{probe_type=Liveness,result=failed} = %v, want at least 2", n)
	}

	// As the kubelet's, the restart after the second kill is immediate too
	// (the back-off starts from the first exit); the third waits it out.
	h.waitPod("liveness", "restartCount 3", 3*time.Minute, func(p *v1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.RestartCount >= 3 && cs.State.Running != nil
	})
	// The pod's timeline, as the local socket serves it, tells the story in
	// order: the probe failed, so the agent killed the container and
	// restarted it; the third time it waited out the back-off first.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tl, err := server.GetTimeline(ctx, agent.LocalSocket(h.rootDir), p.Namespace, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if tl.UID != p.UID || tl.Name != p.Name {
		t.Errorf("timeline of %s/%s (%s), want %s (%s)", tl.Namespace, tl.Name, tl.UID, p.Name, p.UID)
	}
	lines := make([]string, len(tl.Entries))
	for i, e := range tl.Entries {
		lines[i] = fmt.Sprintf("%s %s %s: %s (%s) %s", e.Time.Format("15:04:05.000"), e.Kind, e.Container, e.What, e.Reason, e.Message)
		if i > 0 && e.Time.Before(tl.Entries[i-1].Time) {
			t.Errorf("timeline entry %d is older than the one before it:\n%s\n%s", i, lines[i-1], lines[i])
		}
	}
	want := []string{
		"Source : added",
		"Sync : create sandbox",
		"Sync app: start container (first start)",
		"Probe app: liveness probe failed (Unhealthy)",
		"Sync app: kill container (liveness probe failed)",
		"PLEG app: ContainerDied",
		"Sync app: restart container (killed: liveness probe failed",
		"Probe app: liveness probe failed (Unhealthy)",
		"Sync app: kill container (liveness probe failed)",
		"Sync app: restart container (killed: liveness probe failed",
		"Probe app: liveness probe failed (Unhealthy)",
		"Sync app: kill container (liveness probe failed)",
		"BackOff app: back-off restarting container",
		"Status app: state Running -> Waiting (CrashLoopBackOff)",
		"Sync app: restart container (exited (exit code 0), restartPolicy Always)",
		"Status app: state Waiting (CrashLoopBackOff) -> Running () restart count 3",
	}
	next := 0
	for _, l := range lines {
		if next < len(want) && strings.HasPrefix(l[len("15:04:05.000 "):], want[next]) {
			next++
		}
	}
	// The CRI calls are there too, with their latency (whether a stop's
	// entry comes before or after the exit's PLEG event is a race).
	if !slices.ContainsFunc(tl.Entries, func(e timeline.Entry) bool {
		return e.Kind == timeline.CRI && e.What == "StopContainer" && e.Container == "app" && e.Duration != ""
	}) {
		t.Errorf("the timeline has no StopContainer call with its duration:\n%s", strings.Join(lines, "\n"))
	}
	if next < len(want) {
		t.Errorf("the timeline lacks %q after %q, in order; it has:\n%s", want[next], want[max(next-1, 0)], strings.Join(lines, "\n"))
	}
}

// probeCount sums prober_probe_total for a probe type and result.
func probeCount(t *testing.T, h *harness, probeType, result string) float64 {
	t.Helper()
	mfs, err := h.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "prober_probe_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["probe_type"] == probeType && labels["result"] == result {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestE2EReadinessFlips: an exec readiness probe on a file the test creates
// and removes flips the container's ready flag and the pod's ContainersReady
// and Ready conditions both ways.
func TestE2EReadinessFlips(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	c := shell("app", `trap 'exit 0' TERM; `+idle)
	c.ReadinessProbe = &v1.Probe{ProbeHandler: *execProbe("cat", "/host/ready"), PeriodSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1, TimeoutSeconds: 1}
	h.writeManifest(h.testPod("readiness", c))

	readyFile := filepath.Join(h.hostDir, "ready")
	isReady := func(want bool) func(*v1.Pod) bool {
		w := v1.ConditionFalse
		if want {
			w = v1.ConditionTrue
		}
		return func(p *v1.Pod) bool {
			cs := containerStatus(p, "app")
			return running(p) && cs != nil && cs.Ready == want &&
				condition(p, v1.PodReady) == w && condition(p, v1.ContainersReady) == w
		}
	}
	h.waitPod("readiness", "running and not ready", time.Minute, isReady(false))
	waitFor(t, "two failed readiness probes", 30*time.Second, func() bool { return probeCount(t, h, "Readiness", "failed") >= 2 })
	if p := h.pod("readiness"); p == nil || !isReady(false)(p) {
		t.Fatalf("pod ready without its readiness file:\n%s", describe(p))
	}
	for i, want := range []bool{true, false, true} {
		if want {
			if err := os.WriteFile(readyFile, []byte("ok"), 0o644); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Remove(readyFile); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		h.waitPod("readiness", fmt.Sprintf("step %d: ready=%v", i, want), 20*time.Second, isReady(want))
		t.Logf("ready=%v after %s", want, time.Since(start).Round(time.Millisecond))
	}
	if cs := containerStatus(h.pod("readiness"), "app"); cs.RestartCount != 0 {
		t.Errorf("readiness changes restarted the container: restartCount %d", cs.RestartCount)
	}
}

// TestE2EInitContainersInOrder: the first init container fails twice (a
// counter on the host) and succeeds the third time; the second runs only
// after that, and the app container only after both, with the pod Pending,
// not Initialized and the app waiting in PodInitializing meanwhile.
func TestE2EInitContainersInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	pod := h.testPod("init", shell("app", `trap 'exit 0' TERM; rec app-start; `+idle))
	pod.Spec.InitContainers = []v1.Container{
		shell("init1", `n=$(cat /host/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /host/count; rec init1-$n; [ $n -ge 3 ]`),
		shell("init2", `rec init2-start; sleep 1; rec init2-done`),
	}
	h.writeManifest(pod)

	blocked := false
	p := h.waitPod("init", "running", 2*time.Minute, func(p *v1.Pod) bool {
		init1, app := containerStatus(p, "init1"), containerStatus(p, "app")
		// Read after the status: the count only grows, and init1 succeeds
		// on its third run.
		data, _ := os.ReadFile(filepath.Join(h.hostDir, "count"))
		if n, _ := strconv.Atoi(strings.TrimSpace(string(data))); n < 3 && app != nil {
			// While init1 fails, the app must wait.
			if app.State.Running != nil || app.State.Terminated != nil {
				t.Errorf("app container started while init1 failed (%d runs):\n%s", n, describe(p))
			}
			if init1 != nil && init1.RestartCount >= 1 && app.State.Waiting != nil && app.State.Waiting.Reason == "PodInitializing" &&
				p.Status.Phase == v1.PodPending && condition(p, v1.PodInitialized) == v1.ConditionFalse {
				blocked = true
			}
		}
		return running(p)
	})
	if !blocked {
		t.Error("never saw the pod Pending, not Initialized, with the app waiting in PodInitializing while init1 failed")
	}
	want := []string{"init1-1", "init1-2", "init1-3", "init2-start", "init2-done", "app-start"}
	if got := whats(h.waitEvents("app-start")); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events %v, want %v", got, want)
	}
	init1, init2 := containerStatus(p, "init1"), containerStatus(p, "init2")
	if init1.RestartCount != 2 || init1.State.Terminated == nil || init1.State.Terminated.ExitCode != 0 {
		t.Errorf("init1 status: restartCount %d, state %+v; want 2 restarts and exit 0", init1.RestartCount, init1.State)
	}
	if init2.RestartCount != 0 || init2.State.Terminated == nil || init2.State.Terminated.Reason != "Completed" {
		t.Errorf("init2 status: restartCount %d, state %+v", init2.RestartCount, init2.State)
	}
	if condition(p, v1.PodInitialized) != v1.ConditionTrue {
		t.Errorf("pod not Initialized:\n%s", describe(p))
	}
	// The runtime's own times agree: the app started after init2 finished,
	// init2 started after init1's last instance finished.
	var i1, i2, app *runtimeapi.ContainerStatus
	waitFor(t, "the containers' events", 30*time.Second, func() bool {
		i1, i2, app = h.events.newest(p.UID, "init1"), h.events.newest(p.UID, "init2"), h.events.newest(p.UID, "app")
		return i1.GetFinishedAt() > 0 && i2.GetFinishedAt() > 0 && app.GetStartedAt() > 0
	})
	if !(i1.GetFinishedAt() <= i2.GetStartedAt() && i2.GetFinishedAt() <= app.GetStartedAt()) {
		t.Errorf("runtime times out of order: init1 finished %d, init2 %d..%d, app started %d",
			i1.GetFinishedAt(), i2.GetStartedAt(), i2.GetFinishedAt(), app.GetStartedAt())
	}
}

// TestE2ESidecarOrder: a sidecar (restartable init container) starts before
// the app container and, when the pod is deleted, is stopped only after the
// app container has finished.
func TestE2ESidecarOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	always := v1.ContainerRestartPolicyAlways
	sidecar := shell("sidecar", `trap 'rec sidecar-term; exit 0' TERM; rec sidecar-start; `+idle)
	sidecar.RestartPolicy = &always
	pod := h.testPod("sidecar", shell("app", `trap 'rec app-term; sleep 1; rec app-exit; exit 0' TERM; rec app-start; `+idle))
	pod.Spec.InitContainers = []v1.Container{sidecar}
	h.writeManifest(pod)
	p := h.waitPod("sidecar", "ready", time.Minute, ready)

	evs := h.waitEvents("sidecar-start", "app-start")
	if s, a := index(evs, "sidecar-start"), index(evs, "app-start"); s > a {
		t.Errorf("start events %v, want the sidecar's before the app's", whats(evs))
	}
	var sc, app []*runtimeapi.ContainerStatus
	waitFor(t, "both containers' start events", 30*time.Second, func() bool {
		sc, app = h.events.instances(p.UID, "sidecar"), h.events.instances(p.UID, "app")
		return len(sc) > 0 && len(app) > 0 && sc[0].GetStartedAt() > 0 && app[0].GetStartedAt() > 0
	})
	if len(sc) != 1 || len(app) != 1 {
		t.Fatalf("%d sidecar and %d app instances, want 1 and 1", len(sc), len(app))
	}
	if sc[0].GetStartedAt() > app[0].GetStartedAt() {
		t.Errorf("the runtime started the app (%d) before the sidecar (%d)", app[0].GetStartedAt(), sc[0].GetStartedAt())
	}

	h.removeManifest("sidecar")
	waitFor(t, "both containers to exit", time.Minute, func() bool {
		return h.events.exited(sc[0].GetId()) != nil && h.events.exited(app[0].GetId()) != nil
	})
	evs = h.hostEvents()
	at, ax, st := index(evs, "app-term"), index(evs, "app-exit"), index(evs, "sidecar-term")
	if at < 0 || ax < 0 || st < 0 || !(at < ax && ax < st) {
		t.Errorf("stop events %v, want app-term, app-exit, then sidecar-term", whats(evs))
	}
	if a, s := h.events.exited(app[0].GetId()), h.events.exited(sc[0].GetId()); a.GetFinishedAt() > s.GetFinishedAt() {
		t.Errorf("the sidecar finished (%d) before the app (%d)", s.GetFinishedAt(), a.GetFinishedAt())
	}
}

// TestE2EPreStopBeforeSIGTERM: a container's preStop hook runs to its end
// before the container gets SIGTERM.
func TestE2EPreStopBeforeSIGTERM(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	c := shell("app", `trap 'rec term; exit 0' TERM; `+idle)
	c.Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{
		Command: []string{"sh", "-c", recFunc + "rec prestop-start; sleep 1; rec prestop-end"},
	}}}
	h.writeManifest(h.testPod("prestop", c))
	p := h.waitPod("prestop", "ready", time.Minute, ready)
	id := criID(containerStatus(p, "app").ContainerID)

	h.removeManifest("prestop")
	waitFor(t, "the container to exit", time.Minute, func() bool { return h.events.exited(id) != nil })
	evs := h.hostEvents()
	ps, pe, term := index(evs, "prestop-start"), index(evs, "prestop-end"), index(evs, "term")
	if ps < 0 || pe < 0 || term < 0 || !(ps < pe && pe < term) {
		t.Fatalf("events %v, want prestop-start, prestop-end, term", whats(evs))
	}
	if d := evs[term].at - evs[ps].at; d < 0.95 {
		t.Errorf("SIGTERM came %.2fs after the preStop hook started, want after the hook's 1 s", d)
	}
	if ex := h.events.exited(id); ex.GetExitCode() != 0 {
		t.Errorf("exit code %d, want 0 (the TERM trap)", ex.GetExitCode())
	}
}

// TestE2EGracePeriodThenSIGKILL: a container that ignores SIGTERM is killed
// with SIGKILL at the end of its pod's 3 s grace period.
func TestE2EGracePeriodThenSIGKILL(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	pod := h.testPod("stubborn", shell("app", `trap 'rec term' TERM; `+idle))
	grace := int64(3)
	pod.Spec.TerminationGracePeriodSeconds = &grace
	h.writeManifest(pod)
	p := h.waitPod("stubborn", "ready", time.Minute, ready)
	id := criID(containerStatus(p, "app").ContainerID)

	start := time.Now()
	bootOffset := float64(start.UnixNano())/1e9 - uptime(t) // wall time of boot
	h.removeManifest("stubborn")
	var ex *runtimeapi.ContainerStatus
	waitFor(t, "the container to exit", time.Minute, func() bool { ex = h.events.exited(id); return ex != nil })
	finished := time.Unix(0, ex.GetFinishedAt())
	total := finished.Sub(start)
	t.Logf("stopped %s after the manifest was removed", total.Round(time.Millisecond))
	if ex.GetExitCode() != 137 {
		t.Errorf("exit code %d, want 137 (SIGKILL)", ex.GetExitCode())
	}
	if total < 3*time.Second {
		t.Errorf("the stop took %s, less than the 3 s grace period", total)
	}
	evs := h.hostEvents()
	term := index(evs, "term")
	if term < 0 {
		t.Fatalf("the container never got SIGTERM: events %v", whats(evs))
	}
	termWall := bootOffset + evs[term].at
	if kill := float64(finished.UnixNano())/1e9 - termWall; kill < 2.9 || kill > 4.5 {
		t.Errorf("SIGKILL came %.2fs after SIGTERM, want 3 s", kill)
	}
}

// TestE2ECrashLoopBackOff: a container that exits at once is restarted after
// the crash-loop back-off: at once the first time, then after 10 s, then
// after 20 s, in CrashLoopBackOff meanwhile.
func TestE2ECrashLoopBackOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.writeManifest(h.testPod("crash", shell("app", `rec start; exit 1`)))
	p := h.waitPod("crash", "a first start", time.Minute, func(p *v1.Pod) bool { return containerStatus(p, "app") != nil })

	sawBackOff := false
	h.waitPod("crash", "restartCount 3", 2*time.Minute, func(p *v1.Pod) bool {
		cs := containerStatus(p, "app")
		if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			sawBackOff = true
		}
		return cs.RestartCount >= 3 && len(h.events.instances(p.UID, "app")) >= 4
	})
	if !sawBackOff {
		t.Error("never saw the container waiting in CrashLoopBackOff")
	}
	var in []*runtimeapi.ContainerStatus
	waitFor(t, "the first three instances' exits", 30*time.Second, func() bool {
		in = h.events.instances(p.UID, "app")
		return len(in) >= 4 && in[2].GetFinishedAt() > 0
	})
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second}
	for i, w := range want {
		prev, next := in[i], in[i+1]
		if prev.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || prev.GetExitCode() != 1 {
			t.Fatalf("instance %d: state %v exit %d, want exited with 1", i, prev.GetState(), prev.GetExitCode())
		}
		// From the exit to the creation of the next instance: the agent's
		// decision, without the runtime's start-up time.
		gap := time.Duration(next.GetCreatedAt() - prev.GetFinishedAt())
		t.Logf("restart %d: created %s after the exit (back-off %s)", i+1, gap.Round(time.Millisecond), w)
		if gap < w-500*time.Millisecond || gap > w+4*time.Second {
			t.Errorf("restart %d: created %s after the exit, want %s (-0.5 s/+4 s)", i+1, gap, w)
		}
		if got := next.GetMetadata().GetAttempt(); got != uint32(i+1) {
			t.Errorf("instance %d has attempt %d", i+1, got)
		}
	}
	// The container's own output agrees: one start line per instance.
	waitFor(t, "four start lines", 30*time.Second, func() bool { return len(h.hostEvents()) >= 4 })
}

// TestE2ERunToCompletion: a restartPolicy Never pod whose container exits 0
// ends Succeeded, its sandbox stopped, and stays (with its status) until its
// manifest goes.
func TestE2ERunToCompletion(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	pod := h.testPod("job", shell("work", `rec done`))
	pod.Spec.RestartPolicy = v1.RestartPolicyNever
	h.writeManifest(pod)
	p := h.waitPod("job", "Succeeded", time.Minute, func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	cs := containerStatus(p, "work")
	if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 || cs.State.Terminated.Reason != "Completed" || cs.RestartCount != 0 {
		t.Errorf("container status %+v", cs)
	}
	waitFor(t, "the sandbox to stop", 30*time.Second, func() bool {
		rs := h.runtimePod(p.UID)
		return len(rs.SandboxStatuses) == 1 && rs.SandboxStatuses[0].GetState() == runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	})
	if got := h.pod("job"); got == nil || got.Status.Phase != v1.PodSucceeded {
		t.Fatalf("finished pod not kept with its status: %s", describe(got))
	}
	if n := len(h.hostEvents()); n != 1 {
		t.Errorf("the container ran %d times, want once", n)
	}
	h.removeManifest("job")
	waitFor(t, "the pod to leave the runtime", time.Minute, func() bool {
		rs := h.runtimePod(p.UID)
		return len(rs.SandboxStatuses)+len(rs.ContainerStatuses) == 0
	})
}

// TestE2EDeleteManifestRemovesPod: a pod runs on the test's CNI network; once
// its manifest is deleted the runtime holds nothing of it, its status, pod
// directory, logs and cgroup are gone.
func TestE2EDeleteManifestRemovesPod(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	pod := h.testPod("doomed",
		shell("a", `trap 'exit 0' TERM; echo hello from a; `+idle),
		shell("b", `trap 'exit 0' TERM; `+idle),
	)
	h.writeManifest(pod)
	p := h.waitPod("doomed", "both containers running", time.Minute, func(p *v1.Pod) bool {
		return ready(p) && len(p.Status.ContainerStatuses) == 2
	})
	if !h.net.Contains(p.Status.PodIP) {
		t.Errorf("pod IP %q is not in the test network %s", p.Status.PodIP, h.net.Subnet)
	}
	rs := h.runtimePod(p.UID)
	if len(rs.SandboxStatuses) != 1 || len(rs.ContainerStatuses) != 2 {
		t.Fatalf("runtime holds %d sandboxes and %d containers of the pod, want 1 and 2", len(rs.SandboxStatuses), len(rs.ContainerStatuses))
	}
	podDir := filepath.Join(h.rootDir, "pods", string(p.UID))
	logDir := filepath.Join(h.podLogs, p.Namespace+"_"+p.Name+"_"+string(p.UID))
	cgroup := ""
	for _, q := range []string{"besteffort", "burstable", ""} {
		d := filepath.Join("/sys/fs/cgroup/memory", h.cgroupRoot, "kubepods", q, "pod"+string(p.UID))
		if _, err := os.Stat(d); err == nil {
			cgroup = d
		}
	}
	if cgroup == "" {
		t.Errorf("no pod cgroup under %s", h.cgroupRoot)
	}
	for _, d := range []string{podDir, logDir} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("pod directory: %v", err)
		}
	}

	h.removeManifest("doomed")
	waitFor(t, "the pod to leave the runtime", time.Minute, func() bool {
		rs := h.runtimePod(p.UID)
		return len(rs.SandboxStatuses) == 0 && len(rs.ContainerStatuses) == 0
	})
	waitFor(t, "the pod's directories and cgroup to go", 30*time.Second, func() bool {
		for _, d := range []string{podDir, logDir, cgroup} {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				return false
			}
		}
		return h.pod("doomed") == nil
	})
	waitFor(t, "both containers' exit events", 30*time.Second, func() bool {
		return h.events.exited(rs.ContainerStatuses[0].GetId()) != nil && h.events.exited(rs.ContainerStatuses[1].GetId()) != nil
	})
	for _, s := range rs.ContainerStatuses {
		if ex := h.events.exited(s.GetId()); ex.GetExitCode() != 0 {
			t.Errorf("container %s exited with %d, want 0 (its TERM trap)", s.GetMetadata().GetName(), ex.GetExitCode())
		}
	}
	if leaks := h.net.Leaks(); len(leaks) > 0 {
		t.Errorf("the pod's network is left: %v", leaks)
	}
}

// TestE2EEditedManifestReplacesPod: editing a manifest makes a new pod (a new
// UID); it starts only once the previous instance has stopped, as upstream's
// static pods do, and the old one is removed.
func TestE2EEditedManifestReplacesPod(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	pod := h.testPod("edited", shell("app", `trap 'rec term-$V; sleep 1; rec exit-$V; exit 0' TERM; rec start-$V; `+idle))
	pod.Spec.Containers[0].Env = []v1.EnvVar{{Name: "V", Value: "1"}}
	h.writeManifest(pod)
	first := h.waitPod("edited", "ready", time.Minute, ready)

	pod.Spec.Containers[0].Env[0].Value = "2"
	h.writeManifest(pod)
	second := h.waitPod("edited", "the edited pod ready", time.Minute, func(p *v1.Pod) bool { return p.UID != first.UID && ready(p) })
	want := "start-1 term-1 exit-1 start-2"
	if got := strings.Join(whats(h.waitEvents("start-2")), " "); got != want {
		t.Errorf("events %q, want %q: the new instance must start after the old one stopped", got, want)
	}
	waitFor(t, "the first instance to leave the runtime", time.Minute, func() bool {
		rs := h.runtimePod(first.UID)
		return len(rs.SandboxStatuses)+len(rs.ContainerStatuses) == 0
	})
	if len(h.agent.Pods()) != 1 || h.pod("edited").UID != second.UID {
		t.Errorf("agent pods after the edit: %d", len(h.agent.Pods()))
	}
}
