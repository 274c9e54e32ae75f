package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criclient "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/internal/containerdtest"
	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testnet"
)

// The agent on Debian's containerd 1.6 instead of nodekit's shim: the kubelet
// is meant to drive any CRI runtime (`--container-runtime-endpoint`), and
// containerd is the one most nodes run. The harness is the same as the other
// end-to-end tests' (per-test directories, CNI network and cgroup root; the
// agent in this process, reaching the runtime through k8s.io/cri-client), with
// a private containerd (internal/containerdtest) where the shim was.

const web = "nodekit.local/web:latest"

// newContainerdHarness starts a private containerd on the test's CNI network
// with the sample images imported. The agent is not started. The cleanups
// remove the pods containerd still has through CRI, stop it, remove what it
// left (shims, sockets, CNI cache entries, mounts) and check the node as the
// other end-to-end tests do, each a test failure.
func newContainerdHarness(t *testing.T) *ctdHarness {
	t.Helper()
	testenv.RequireRoot(t)
	if err := containerdtest.Missing(); err != nil {
		testenv.Skip(t, err.Error())
	}
	quietKlog.Do(func() { klog.SetSlogLogger(slog.New(slog.DiscardHandler)) })
	runc := testenv.Binary(t, "runc")
	images := []string{testenv.Image(t, "busybox"), testenv.Image(t, "web"), testenv.Image(t, "pause")}
	h := prepare(t, "nkac-") // short: containerd's sockets are in it
	// No nodekit shim runs here: base as its "state" checks that no
	// nodekit-monitor names the test's directory.
	h.checkState = h.base
	ch := &ctdHarness{harness: h, sandboxes: map[string]bool{}}
	var ctd *containerdtest.Containerd
	h.dumps = append(h.dumps, dump{"agent log", h.logs.String}, dump{"containerd log (tail)", func() string {
		if ctd == nil {
			return "<not started>"
		}
		return ctd.LogTail(100)
	}})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctd, err := containerdtest.Start(ctx, containerdtest.Config{
		Dir:        filepath.Join(h.base, "ctd"),
		Runc:       runc, // the same runc as nodekit's shim: a fair comparison
		CNIConfDir: h.net.ConfDir,
		CNIBinDir:  testnet.PluginDir(), // containerd 1.6 takes one plugin directory
		LogLevel:   "info",
	})
	if err != nil {
		t.Fatal(err)
	}
	h.sock = ctd.Address()
	ch.ctd = ctd
	t.Cleanup(func() {
		if !ctd.Exited() && h.rt != nil {
			// Pods the agent did not remove (it failed): through CRI, so CNI
			// tears their networks down.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// Best effort: ctd.Cleanup reports what is left.
			if sbs, err := h.rt.ListPodSandbox(ctx, nil); err == nil {
				for _, sb := range sbs {
					ch.sandboxes[sb.GetId()] = true
					_ = h.rt.StopPodSandbox(ctx, sb.GetId())
					_ = h.rt.RemovePodSandbox(ctx, sb.GetId())
				}
			}
		}
		for _, l := range ctd.Cleanup(keys(ch.sandboxes)...) {
			t.Errorf("containerd left: %s", l)
		}
	})
	if err := ctd.Import(ctx, images...); err != nil {
		t.Fatal(err)
	}
	endpoint := "unix://" + ctd.Address()
	if h.rt, err = criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint(endpoint).
		WithConnectionTimeout(2 * time.Minute).WithTracerProvider(nil).Build(ctx); err != nil {
		t.Fatal(err)
	}
	if h.img, err = criclient.NewRemoteImageServiceBuilder().WithEndpoint(endpoint).
		WithConnectionTimeout(2 * time.Minute).WithTracerProvider(nil).Build(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{busybox, web, containerdtest.DefaultSandboxImage} {
		st, err := h.img.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: ref}, false)
		if err != nil || st.GetImage() == nil {
			t.Fatalf("image %s not in containerd after ctr import: %v", ref, err)
		}
	}
	return ch
}

// ctdHarness is the harness with containerd as its runtime.
type ctdHarness struct {
	*harness
	ctd *containerdtest.Containerd
	// sandboxes are the ids of every sandbox seen, for the leftovers' check.
	sandboxes map[string]bool
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestAgentWithContainerd runs the agent on containerd 1.6: a web pod whose
// HTTP readiness probe reaches it at its pod IP (from containerd's CNI) and a
// pod with an init container become Running and Ready, the init container
// first; the app's output is in /containerLogs; deleting a manifest removes
// its pod from containerd; the evented PLEG falls back to relisting by itself
// (containerd 1.6 has no GetContainerEvents); stopping the agent stops every
// pod, and the stopped containerd leaves nothing on the node.
func TestAgentWithContainerd(t *testing.T) {
	t.Parallel()
	h := newContainerdHarness(t)
	ctd := h.ctd
	h.startAgent(harnessOptions{server: true})

	grace := int64(2) // busybox httpd, pid 1, ignores SIGTERM
	wp := &v1.Pod{Spec: v1.PodSpec{
		TerminationGracePeriodSeconds: &grace,
		Containers: []v1.Container{{
			Name:            "web",
			Image:           web,
			ImagePullPolicy: v1.PullIfNotPresent,
			Ports:           []v1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			// As examples/pods/web.yaml: a Guaranteed pod. Its oom_score_adj
			// (-997) is below the test's own, which runc could not set here
			// without CAP_SYS_RESOURCE: containerd clamps it
			// (restrict_oom_score_adj).
			Resources: v1.ResourceRequirements{Limits: v1.ResourceList{
				v1.ResourceMemory: resource.MustParse("64Mi"), v1.ResourceCPU: resource.MustParse("250m"),
			}},
			ReadinessProbe: &v1.Probe{
				ProbeHandler:  v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
				PeriodSeconds: 1,
			},
		}},
	}}
	wp.APIVersion, wp.Kind, wp.Name = "v1", "Pod", "web"
	h.writeManifest(wp)

	ip := h.testPod("init-app", shell("app", `trap 'exit 0' TERM; rec app; echo hello from app on containerd; `+idle))
	ip.Spec.InitContainers = []v1.Container{shell("init", `rec init; echo init done`)}
	h.writeManifest(ip)

	// The web pod: Ready through its HTTP probe, at an address of the test's
	// network that containerd's CNI gave its sandbox.
	w := h.waitPod("web", "ready", 2*time.Minute, ready)
	if !h.net.Contains(w.Status.PodIP) {
		t.Errorf("web pod IP %q is not in the test network %s", w.Status.PodIP, h.net.Subnet)
	}
	cs := containerStatus(w, "web")
	if cs == nil || !cs.Ready || !strings.HasPrefix(cs.ContainerID, "containerd://") {
		t.Fatalf("web container status %+v, want ready with a containerd:// ID", cs)
	}
	webUID := w.UID
	sbs := h.sandboxesOf(webUID)
	if len(sbs) != 1 {
		t.Fatalf("containerd has %d sandboxes of the web pod, want 1", len(sbs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sbst, err := h.rt.PodSandboxStatus(ctx, sbs[0].GetId(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := sbst.GetStatus().GetNetwork().GetIp(); got != w.Status.PodIP {
		t.Errorf("containerd's sandbox IP %q, the agent's pod IP %q", got, w.Status.PodIP)
	}
	if _, err := h.rt.ContainerStatus(ctx, criID(cs.ContainerID), false); err != nil {
		t.Errorf("containerd does not know the web container %s: %v", cs.ContainerID, err)
	}
	// The agent's resources reached runc through containerd: the container's
	// memory cgroup, under the Guaranteed pod's parent, has the limit.
	cg := filepath.Join(h.cgroupRoot, "kubepods", "pod"+string(webUID), criID(cs.ContainerID))
	limitFile := filepath.Join("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes") // v1
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		limitFile = filepath.Join("/sys/fs/cgroup", cg, "memory.max") // v2
	}
	if data, err := os.ReadFile(limitFile); err != nil || strings.TrimSpace(string(data)) != "67108864" {
		t.Errorf("web container's memory limit %q (%v), want 67108864 (64Mi)", data, err)
	}
	body := httpGet(t, "http://"+net.JoinHostPort(w.Status.PodIP, "8080")+"/")
	if !strings.Contains(body, "nodekit web sample") {
		t.Errorf("GET / of the web pod: %q", body)
	}

	// The init pod: init ran to completion first, then the app.
	p := h.waitPod("init-app", "ready", 2*time.Minute, ready)
	if c := condition(p, v1.PodInitialized); c != v1.ConditionTrue {
		t.Errorf("Initialized = %q, want True", c)
	}
	ics := containerStatus(p, "init")
	if ics == nil || ics.State.Terminated == nil || ics.State.Terminated.ExitCode != 0 || ics.State.Terminated.Reason != "Completed" {
		t.Errorf("init container status %+v, want terminated, exit 0, Completed", ics)
	}
	if acs := containerStatus(p, "app"); acs == nil || acs.State.Running == nil || !strings.HasPrefix(acs.ContainerID, "containerd://") {
		t.Errorf("app container status %+v, want running with a containerd:// ID", acs)
	} else if ics != nil && ics.State.Terminated != nil && acs.State.Running.StartedAt.Before(&ics.State.Terminated.FinishedAt) {
		t.Errorf("app started at %s, before init finished at %s", acs.State.Running.StartedAt, ics.State.Terminated.FinishedAt)
	}
	evs := h.waitEvents("init", "app")
	if i, a := index(evs, "init"), index(evs, "app"); i > a {
		t.Errorf("events %v: app before init", whats(evs))
	}

	// The app's output, from containerd's log file, through the kubelet API.
	local := localClient(h.agent.Addrs().LocalSocket)
	for _, c := range []struct{ name, want string }{{"app", "hello from app on containerd"}, {"init", "init done"}} {
		waitFor(t, c.name+"'s output in /containerLogs", 30*time.Second, func() bool {
			code, body := get(t, local, "http://localhost/containerLogs/default/init-app-"+nodeName+"/"+c.name)
			return code == http.StatusOK && strings.Contains(string(body), c.want)
		})
	}

	// containerd 1.6 has no container events: the evented PLEG found out and
	// relists instead, by itself.
	waitFor(t, "the PLEG's fallback to relisting in the agent's log", time.Minute, func() bool {
		l := h.logs.String()
		return strings.Contains(l, "runtime does not implement GetContainerEvents; using the generic PLEG") ||
			strings.Contains(l, "container event stream keeps failing; falling back to the generic PLEG")
	})
	if n := metricSum(t, h, "kubelet_evented_pleg_connection_total", "result", "success"); n != 0 {
		t.Errorf("kubelet_evented_pleg_connection_total{result=success} = %v, want 0 (containerd 1.6 has no event stream)", n)
	}
	if n := metricSum(t, h, "kubelet_evented_pleg_connection_total", "result", "error"); n < 1 {
		t.Errorf("kubelet_evented_pleg_connection_total{result=error} = %v, want at least 1", n)
	}
	waitFor(t, "3 PLEG relists (the generic PLEG relists every second)", 30*time.Second, func() bool {
		return metricSum(t, h, "kubelet_pleg_relist_duration_seconds", "", "") >= 3
	})

	// Deleting the web manifest removes the pod from the agent and containerd.
	h.removeManifest("web")
	waitFor(t, "the web pod to leave the agent", time.Minute, func() bool { return h.pod("web") == nil })
	waitFor(t, "the web pod's sandbox and containers to leave containerd", time.Minute, func() bool {
		return len(h.sandboxesOf(webUID)) == 0 && len(h.containersOf(webUID)) == 0
	})
	if p := h.pod("init-app"); p == nil || !ready(p) {
		t.Errorf("init-app pod disturbed by the web pod's removal:\n%s", describe(p))
	}

	// The agent stops every pod on its way out (stopAgent checks that the
	// runtime holds none and the pod directories are gone).
	h.sandboxesOf("") // note the sandbox ids for the leftovers' check
	h.stopAgent()
	if t.Failed() {
		return
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if sbs, err := h.rt.ListPodSandbox(ctx2, nil); err != nil || len(sbs) != 0 {
		t.Fatalf("containerd holds %d sandboxes after the agent stopped (%v)", len(sbs), err)
	}
	if cs, err := h.rt.ListContainers(ctx2, nil); err != nil || len(cs) != 0 {
		t.Fatalf("containerd holds %d containers after the agent stopped (%v)", len(cs), err)
	}

	// containerd stops by its PID within the grace period, and leaves nothing:
	// no shim, shim socket, runc container, CNI cache entry or mount (here);
	// no cgroup, address, bridge port or NAT rule (assertNodeClean).
	pid := ctd.PID()
	if err := ctd.Stop(10 * time.Second); err != nil {
		t.Errorf("stop containerd (pid %d): %v", pid, err)
	}
	if shims, err := containerdtest.Shims(ctd.Address()); err != nil || len(shims) > 0 {
		t.Errorf("shims of the stopped containerd: %+v (%v)", shims, err)
	}
	for _, l := range ctd.Cleanup(keys(h.sandboxes)...) {
		t.Errorf("containerd left: %s", l)
	}
	if m := containerdtest.MountsUnder(h.base); len(m) > 0 {
		t.Errorf("mounts left under %s: %v", h.base, m)
	}
	h.net.AssertClean()
	h.assertNodeClean()
}

// sandboxesOf lists containerd's sandboxes of pod uid (every sandbox with ""),
// noting their ids for the leftovers' check.
func (h *ctdHarness) sandboxesOf(uid types.UID) []*runtimeapi.PodSandbox {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var filter *runtimeapi.PodSandboxFilter
	if uid != "" {
		filter = &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{kubetypes.KubernetesPodUIDLabel: string(uid)}}
	}
	sbs, err := h.rt.ListPodSandbox(ctx, filter)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, sb := range sbs {
		h.sandboxes[sb.GetId()] = true
	}
	return sbs
}

// containersOf lists containerd's containers of pod uid.
func (h *ctdHarness) containersOf(uid types.UID) []*runtimeapi.Container {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := h.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{kubetypes.KubernetesPodUIDLabel: string(uid)}})
	if err != nil {
		h.t.Fatal(err)
	}
	return cs
}

// metricSum sums the agent's metric name (a counter, or a histogram's sample
// count) over the series whose label has value (all series with label "").
func metricSum(t *testing.T, h *ctdHarness, name, label, value string) float64 {
	t.Helper()
	mfs, err := h.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			if m.GetCounter() != nil {
				sum += m.GetCounter().GetValue()
			} else if m.GetHistogram() != nil {
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// httpGet fetches url (a pod's address) and returns the body.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(body)
}
