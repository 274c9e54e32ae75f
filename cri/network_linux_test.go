package cri_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri"
	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testnet"
)

const web = "nodekit.local/web:latest"

// podIPs returns the sandbox's reported addresses (network.ip, then additional_ips).
func (h *harness) podIPs(id string) []string {
	h.t.Helper()
	resp, err := h.rt.PodSandboxStatus(ctx(h.t), &runtime.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		h.t.Fatal(err)
	}
	n := resp.Status.GetNetwork()
	if n.GetIp() == "" {
		return nil
	}
	ips := []string{n.GetIp()}
	for _, ip := range n.GetAdditionalIps() {
		ips = append(ips, ip.GetIp())
	}
	return ips
}

// podIP returns the pod's single address and checks it is in the test subnet.
func (h *harness) podIP(id string) string {
	h.t.Helper()
	ips := h.podIPs(id)
	if len(ips) != 1 || !h.net.Subnet.Contains(net.ParseIP(ips[0])) {
		h.t.Fatalf("pod %s has IPs %v, want one in %s", id[:12], ips, h.net.Subnet)
	}
	return ips[0]
}

// startWeb runs the web image in pod and waits until it serves.
func (h *harness) startWeb(pod string, podCfg *runtime.PodSandboxConfig) string {
	h.t.Helper()
	id := h.createContainer(pod, podCfg, containerConfig("web", web))
	h.startContainer(id)
	h.waitState(id, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	waitFor(h.t, "httpd to answer in its pod", 10*time.Second, func() bool {
		r, err := h.rt.ExecSync(ctx(h.t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"wget", "-qO-", "http://127.0.0.1:8080/healthz"}, Timeout: 5})
		return err == nil && string(r.Stdout) == "ok\n"
	})
	return id
}

// startSleeper runs a busybox that waits, to exec commands in.
func (h *harness) startSleeper(pod string, podCfg *runtime.PodSandboxConfig) string {
	h.t.Helper()
	id := h.createContainer(pod, podCfg, containerConfig("client", busybox, "sleep", "1000"))
	h.startContainer(id)
	h.waitState(id, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	return id
}

// fetchFrom GETs url with wget inside container id; ExecSync's timeout bounds it
// (busybox's own wget -T crashes).
func (h *harness) fetchFrom(id, url string) (string, error) {
	r, err := h.rt.ExecSync(ctx(h.t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"wget", "-qO-", url}, Timeout: 5})
	if err != nil {
		return "", err
	}
	if r.ExitCode != 0 {
		return "", fmt.Errorf("wget %s: exit %d: %s", url, r.ExitCode, r.Stderr)
	}
	return string(r.Stdout), nil
}

func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// httpGet fetches url from the test process.
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), err
}

func hostPortPod(name string, hostPort int32) *runtime.PodSandboxConfig {
	cfg := podConfig(name)
	cfg.PortMappings = []*runtime.PortMapping{{Protocol: runtime.Protocol_TCP, ContainerPort: 8080, HostPort: hostPort}}
	return cfg
}

func networkCondition(t *testing.T, h *harness) *runtime.RuntimeCondition {
	t.Helper()
	resp, err := h.rt.Status(ctx(t), &runtime.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Status.Conditions {
		if c.Type == runtime.NetworkReady {
			return c
		}
	}
	t.Fatal("Status has no NetworkReady condition")
	return nil
}

// Without a loadable configuration the network is not ready, pods that need it fail
// with FailedPrecondition and leave nothing behind, host-network pods still run;
// a configuration added later is picked up without a restart.
func TestNetworkNotReadyUntilConfigured(t *testing.T) {
	h := newHarness(t)
	conf := filepath.Join(h.net.ConfDir, "10-test.conflist")
	aside := filepath.Join(filepath.Dir(h.net.ConfDir), "test.conflist.aside")
	if err := os.Rename(conf, aside); err != nil {
		t.Fatal(err)
	}
	h.start()

	c := networkCondition(t, h)
	if c.Status || c.Reason != "NetworkPluginNotReady" || !strings.Contains(c.Message, "no network config found in "+h.net.ConfDir) {
		t.Fatalf("NetworkReady with an empty config dir = %v", c)
	}
	_, err := h.rt.RunPodSandbox(ctx(t), &runtime.RunPodSandboxRequest{Config: podConfig("early")})
	wantCode(t, "pod without a network config", err, codes.FailedPrecondition, h.net.ConfDir)
	list, err := h.rt.ListPodSandbox(ctx(t), &runtime.ListPodSandboxRequest{})
	if err != nil || len(list.Items) != 0 {
		t.Fatalf("sandboxes after a failed RunPodSandbox: %v, %v", list.GetItems(), err)
	}
	for _, d := range []string{filepath.Join(h.state, "sandboxes"), filepath.Join(h.root, "sandboxes")} {
		if entries, _ := os.ReadDir(d); len(entries) != 0 {
			t.Fatalf("%s holds %d entries after a failed RunPodSandbox", d, len(entries))
		}
	}

	// The host network needs no CNI.
	hostCfg := podConfig("hostnet")
	hostCfg.Linux.SecurityContext.NamespaceOptions.Network = runtime.NamespaceMode_NODE
	hostPod := h.runPodConfig(hostCfg)
	if ips := h.podIPs(hostPod); len(ips) != 0 {
		t.Fatalf("host-network pod reports CNI addresses %v", ips)
	}

	// A broken file first by name: not ready, and the message names the file.
	broken := filepath.Join(h.net.ConfDir, "05-broken.conflist")
	if err := os.WriteFile(broken, []byte(`{"cniVersion": "1.0.0", "name": `), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, conf); err != nil {
		t.Fatal(err)
	}
	if c := networkCondition(t, h); c.Status || !strings.Contains(c.Message, broken) {
		t.Fatalf("NetworkReady with a broken first config = %v", c)
	}
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	if c := networkCondition(t, h); !c.Status {
		t.Fatalf("NetworkReady after the config appeared = %v", c)
	}
	// The name the failed attempt tried is free, and the pod gets an address.
	pod, _ := h.runPod("early")
	h.podIP(pod)

	resp, err := h.rt.Status(ctx(t), &runtime.StatusRequest{Verbose: true})
	if err != nil || !strings.Contains(resp.Info["config"], h.net.Name) {
		t.Fatalf("verbose status does not name the network %s: %v %v", h.net.Name, resp.GetInfo(), err)
	}
}

// Two pods reach each other by IP on the bridge.
func TestPodToPod(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	h.importImage("web")

	podA, cfgA := h.runPod("server")
	podB, cfgB := h.runPod("client")
	ipA, ipB := h.podIP(podA), h.podIP(podB)
	if ipA == ipB {
		t.Fatalf("both pods got %s", ipA)
	}
	h.startWeb(podA, cfgA)
	client := h.startSleeper(podB, cfgB)
	var body string
	var err error
	waitFor(t, "pod B to reach pod A", 10*time.Second, func() bool {
		body, err = h.fetchFrom(client, "http://"+ipA+":8080/healthz")
		return err == nil
	})
	if body != "ok\n" {
		t.Fatalf("GET /healthz of pod A from pod B = %q", body)
	}
	// The pod sees its own address on eth0.
	r, err := h.rt.ExecSync(ctx(t), &runtime.ExecSyncRequest{ContainerId: client, Cmd: []string{"ip", "-o", "-4", "addr", "show", "eth0"}, Timeout: 10})
	if err != nil || !strings.Contains(string(r.Stdout), " "+ipB+"/") {
		t.Fatalf("eth0 in pod B: %v %q %q", err, r.GetStdout(), r.GetStderr())
	}
	if len(h.net.VethsOnBridge()) != 2 || len(h.net.Reservations()) != 2 {
		t.Fatalf("two pods hold %v and %v", h.net.VethsOnBridge(), h.net.Reservations())
	}
}

// A hostPort reaches the pod from 127.0.0.1 on the node.
func TestHostPort(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("web")
	port := freePort(t)
	cfg := hostPortPod("hostport", port)
	pod := h.runPodConfig(cfg)
	h.startWeb(pod, cfg)
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	var body string
	var err error
	waitFor(t, "the host port to answer", 10*time.Second, func() bool {
		body, err = httpGet(url)
		return err == nil
	})
	if body != "ok\n" {
		t.Fatalf("GET %s = %q", url, body)
	}
	dnat := h.net.PodChains(pod)[1]
	if rules := h.net.NATRules(pod); !slices.ContainsFunc(rules, func(r string) bool { return strings.HasPrefix(r, "-A "+dnat+" ") }) {
		t.Fatalf("no rule in the pod's DNAT chain %s: %q", dnat, rules)
	}
	if _, err := h.rt.StopPodSandbox(ctx(t), &runtime.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if rules := h.net.NATRules(pod); len(rules) != 0 {
		t.Fatalf("NAT rules left after the pod stopped: %q", rules)
	}
	if _, err := httpGet(url); err == nil {
		t.Fatalf("%s still answers after the pod stopped", url)
	}
	// A second stop is a no-op.
	if _, err := h.rt.StopPodSandbox(ctx(t), &runtime.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
}

// A plugin that fails ADD after the bridge did its part: RunPodSandbox fails and
// DEL undoes what was done (no address, no veth, no rules, no namespace).
func TestNetworkAddFailureLeavesNothing(t *testing.T) {
	h := newHarness(t)
	bin := t.TempDir()
	failing := "#!/bin/sh\ncat >/dev/null\nif [ \"$CNI_COMMAND\" = ADD ]; then\n  echo '{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"nodekit test plugin refuses ADD\"}'\n  exit 1\nfi\n"
	if err := os.WriteFile(filepath.Join(bin, "nk-refuse"), []byte(failing), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(h.net.Conflist()), `"type": "loopback"`, `"type": "nk-refuse"`, 1)
	if err := os.WriteFile(filepath.Join(h.net.ConfDir, "10-test.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	h.startWith(func(o *cri.Options) { o.CNIBinDirs = append([]string{bin}, testnet.BinDirs...) })
	_, err := h.rt.RunPodSandbox(ctx(t), &runtime.RunPodSandboxRequest{Config: hostPortPod("refused", freePort(t))})
	wantCode(t, "pod whose network ADD fails", err, codes.Internal, "nodekit test plugin refuses ADD")
	if entries, _ := os.ReadDir(filepath.Join(h.state, "sandboxes")); len(entries) != 0 {
		t.Fatalf("state of the failed sandbox left: %d entries", len(entries))
	}
	if entries, _ := os.ReadDir(filepath.Join(h.state, "cni", "results")); len(entries) != 0 {
		t.Fatalf("libcni cache of the failed sandbox left: %d entries", len(entries))
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", h.net.Name)); err != nil {
		t.Fatalf("the bridge plugin never ran (no bridge %s): the test proves nothing", h.net.Name)
	}
	// The harness checks reservations, veths, NAT rules and mounts.
}

// kill -9 of nodekit-cri: running pods keep their addresses and networking, and the
// restarted shim tears them down with the configuration it persisted.
func TestNetworkSurvivesShimRestart(t *testing.T) {
	h := newHarness(t)
	d := h.startDaemon()
	for _, img := range []string{"busybox", "web"} {
		out, err := exec.Command(testenv.Binary(t, "nodekit-cri"), "import", "--root", h.root, testenv.Image(t, img)).CombinedOutput()
		if err != nil {
			t.Fatalf("import %s: %v\n%s", img, err, out)
		}
	}
	port := freePort(t)
	cfgA := hostPortPod("server", port)
	podA := h.runPodConfig(cfgA)
	podB, cfgB := h.runPod("client")
	ipA, ipB := h.podIP(podA), h.podIP(podB)
	h.startWeb(podA, cfgA)
	client := h.startSleeper(podB, cfgB)
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	reachable := func(when string) {
		t.Helper()
		waitFor(t, "pod B to reach pod A "+when, 10*time.Second, func() bool {
			body, err := h.fetchFrom(client, "http://"+ipA+":8080/healthz")
			return err == nil && body == "ok\n"
		})
		waitFor(t, "the host port to answer "+when, 10*time.Second, func() bool {
			body, err := httpGet(url)
			return err == nil && body == "ok\n"
		})
	}
	reachable("before the restart")

	d.kill()
	// The network lives on without the shim.
	if body, err := httpGet(url); err != nil || body != "ok\n" {
		t.Fatalf("host port while the shim is down: %q, %v", body, err)
	}
	// A configuration change while down must not matter to existing pods' teardown.
	if err := os.Remove(filepath.Join(h.net.ConfDir, "10-test.conflist")); err != nil {
		t.Fatal(err)
	}
	h.startDaemon()
	if got := h.podIPs(podA); !slices.Equal(got, []string{ipA}) {
		t.Fatalf("pod A's IPs after restart %v, was %s", got, ipA)
	}
	if got := h.podIPs(podB); !slices.Equal(got, []string{ipB}) {
		t.Fatalf("pod B's IPs after restart %v, was %s", got, ipB)
	}
	reachable("after the restart")

	// Pod A's rules: its address, its chains (also an empty one).
	chainsA := h.net.PodChains(podA)
	hasRule := func(ip string) bool {
		return slices.ContainsFunc(h.net.NATRules(), func(r string) bool {
			return strings.Contains(r, ip+"/") || strings.Contains(r, ip+":") || strings.Contains(r, chainsA[0]) || strings.Contains(r, chainsA[1])
		})
	}
	if !hasRule(ipA) {
		t.Fatalf("no NAT rule mentions pod A (%s) before its stop: the check below proves nothing", ipA)
	}
	veths := len(h.net.VethsOnBridge())
	if _, err := h.rt.StopPodSandbox(ctx(t), &runtime.StopPodSandboxRequest{PodSandboxId: podA}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(h.net.Reservations(), ipA) || !slices.Contains(h.net.Reservations(), ipB) {
		t.Fatalf("after stopping pod A host-local holds %v (A %s, B %s)", h.net.Reservations(), ipA, ipB)
	}
	if n := len(h.net.VethsOnBridge()); n != veths-1 {
		t.Fatalf("%d veths on the bridge after stopping pod A, had %d", n, veths)
	}
	if hasRule(ipA) {
		t.Fatalf("NAT rules of pod A left after its stop: %q", h.net.NATRules())
	}
	if _, err := httpGet(url); err == nil {
		t.Fatal("the host port still answers after pod A stopped")
	}
	// Remove both while this daemon runs (the cleanups stop it first); the
	// harness then checks that nothing of the network is left.
	for _, pod := range []string{podA, podB} {
		if _, err := h.rt.RemovePodSandbox(ctx(t), &runtime.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatal(err)
		}
	}
}

// 200 pods created and deleted one after another leave no address reservation,
// veth, namespace file, NAT rule, libcni cache entry or mount.
func TestNetworkNoLeaksOverManyPods(t *testing.T) {
	const cycles = 200
	h := newHarness(t)
	h.start()
	port := freePort(t)
	// A deadline per call, not one for the 600 calls: the loop's length is
	// not what is tested (one shared 2-minute deadline failed on a loaded CI
	// machine at cycle 169 of 200).
	seen := map[string]bool{}
	var ids []string
	start := time.Now()
	for i := range cycles {
		cfg := podConfig(fmt.Sprintf("cycle-%d", i))
		if i%10 == 0 { // exercise portmap too
			cfg = hostPortPod(cfg.Metadata.Name, port)
		}
		resp, err := h.rt.RunPodSandbox(ctx(t), &runtime.RunPodSandboxRequest{Config: cfg})
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		id := resp.PodSandboxId
		ids = append(ids, id)
		ips := h.podIPs(id)
		if len(ips) != 1 {
			t.Fatalf("cycle %d: pod IPs %v", i, ips)
		}
		seen[ips[0]] = true
		if _, err := h.rt.StopPodSandbox(ctx(t), &runtime.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("cycle %d: stop: %v", i, err)
		}
		if _, err := h.rt.RemovePodSandbox(ctx(t), &runtime.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("cycle %d: remove: %v", i, err)
		}
	}
	t.Logf("%d pod create/delete cycles in %s (%d distinct addresses)", cycles, time.Since(start).Round(time.Millisecond), len(seen))

	if r := h.net.Reservations(); len(r) != 0 {
		t.Errorf("host-local still holds %d addresses: %v", len(r), r)
	}
	if v := h.net.VethsOnBridge(); len(v) != 0 {
		t.Errorf("%d veths left on %s: %v", len(v), h.net.Name, v)
	}
	for _, d := range []string{filepath.Join(h.state, "sandboxes"), filepath.Join(h.root, "sandboxes"), filepath.Join(h.state, "cni", "results")} {
		if entries, _ := os.ReadDir(d); len(entries) != 0 {
			t.Errorf("%s holds %d entries", d, len(entries))
		}
	}
	if r := h.net.NATRules(ids...); len(r) != 0 {
		t.Errorf("NAT rules or chains left: %q", r)
	}
	if m := leakcheck.Mounts(t, filepath.Dir(h.root)); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// A CNI DEL that fails makes StopPodSandbox fail and leaves the pod as it was (ready,
// namespace pinned) for the kubelet's retry, which then succeeds.
func TestNetworkDelFailureIsRetried(t *testing.T) {
	h := newHarness(t)
	bin := t.TempDir()
	marker := filepath.Join(bin, "refuse-del")
	// First in the chain: ADD answers an empty result (the bridge ignores it), DEL
	// (which runs last) fails while the marker exists.
	plugin := fmt.Sprintf("#!/bin/sh\ncat >/dev/null\nif [ \"$CNI_COMMAND\" = DEL ] && [ -e %s ]; then\n  echo '{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"nodekit test plugin refuses DEL\"}'\n  exit 1\nfi\necho '{\"cniVersion\":\"1.0.0\"}'\n", marker)
	if err := os.WriteFile(filepath.Join(bin, "nk-flaky"), []byte(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(h.net.Conflist()), `"plugins": [`, `"plugins": [{"type": "nk-flaky"},`, 1)
	if err := os.WriteFile(filepath.Join(h.net.ConfDir, "10-test.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	h.startWith(func(o *cri.Options) { o.CNIBinDirs = append([]string{bin}, testnet.BinDirs...) })
	pod, _ := h.runPod("flaky")
	ip := h.podIP(pod)
	touch(t, marker)

	_, err := h.rt.StopPodSandbox(ctx(t), &runtime.StopPodSandboxRequest{PodSandboxId: pod})
	wantCode(t, "stop while DEL fails", err, codes.Internal, "nodekit test plugin refuses DEL")
	resp, err := h.rt.PodSandboxStatus(ctx(t), &runtime.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status.State != runtime.PodSandboxState_SANDBOX_READY {
		t.Fatalf("after a failed stop the pod is %v, want it left READY for a retry", resp.Status.State)
	}
	if ns := filepath.Join(h.state, "sandboxes", pod, "ns", "net"); !slices.Contains(leakcheck.Mounts(t, filepath.Dir(h.root)), ns) {
		t.Fatalf("the pod's network namespace %s was released although DEL failed", ns)
	}

	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if _, err := h.rt.StopPodSandbox(ctx(t), &runtime.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("retried stop: %v", err)
	}
	if slices.Contains(h.net.Reservations(), ip) {
		t.Fatalf("address %s still reserved after the retried stop", ip)
	}
}

// A shim that died between CNI ADD and writing the sandbox record leaves a
// half-created sandbox; the next start tears it down, network included.
func TestNetworkOfHalfCreatedSandboxReleased(t *testing.T) {
	h := newHarness(t)
	h.start()
	pod, _ := h.runPod("half")
	ip := h.podIP(pod)
	h.stopServer()
	// What a crash before the record write leaves: everything but the record.
	if err := os.Remove(filepath.Join(h.state, "sandboxes", pod, "sandbox.json")); err != nil {
		t.Fatal(err)
	}
	h.start()
	if slices.Contains(h.net.Reservations(), ip) || len(h.net.VethsOnBridge()) != 0 {
		t.Fatalf("after recovery host-local holds %v and the bridge %v", h.net.Reservations(), h.net.VethsOnBridge())
	}
	if _, err := os.Stat(filepath.Join(h.state, "sandboxes", pod)); !os.IsNotExist(err) {
		t.Fatalf("state of the half-created sandbox survived recovery: %v", err)
	}
}
