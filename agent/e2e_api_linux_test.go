package agent_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/agent/cli"
	"github.com/nodekit-dev/nodekit/agent/server"
)

// localClient speaks HTTP over the agent's local unix socket.
func localClient(socket string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}
}

func get(t *testing.T, c *http.Client, url string) (int, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, body
}

// TestE2EKubeletAPI: the kubelet API of a running agent, end to end: /pods
// over the local socket lists the pod with its status, /containerLogs returns
// the container's output, /stats/summary has the pod with CPU and memory,
// /metrics has the PLEG and prober metrics, and the TLS port refuses anonymous
// requests.
func TestE2EKubeletAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{server: true})
	c := shell("app", `trap 'exit 0' TERM; echo hello from app; echo oops >&2; `+idle)
	c.ReadinessProbe = &v1.Probe{ProbeHandler: *execProbe("true"), PeriodSeconds: 1}
	h.writeManifest(h.testPod("api", c))
	p := h.waitPod("api", "ready", time.Minute, ready)

	addrs := h.agent.Addrs()
	if addrs == nil || addrs.LocalSocket != agent.LocalSocket(h.rootDir) || addrs.Main == nil {
		t.Fatalf("agent API addresses %+v", addrs)
	}
	local := localClient(addrs.LocalSocket)

	// /pods, as `nodekit-kubelet get pods` reads it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := server.ListPods(ctx, addrs.LocalSocket)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].UID != p.UID || list.Items[0].Status.Phase != v1.PodRunning {
		t.Fatalf("/pods: %d pods, first %+v", len(list.Items), list.Items)
	}
	var table strings.Builder
	if err := cli.PrintPods(&table, list.Items, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "api-"+nodeName) || !strings.Contains(table.String(), "1/1") || !strings.Contains(table.String(), "Running") {
		t.Errorf("pods table:\n%s", table.String())
	}

	// /containerLogs: the container's output, both streams.
	waitFor(t, "the container's output in /containerLogs", 30*time.Second, func() bool {
		code, body := get(t, local, "http://localhost/containerLogs/default/api-"+nodeName+"/app")
		return code == http.StatusOK && strings.Contains(string(body), "hello from app") && strings.Contains(string(body), "oops")
	})
	if code, _ := get(t, local, "http://localhost/containerLogs/default/api-"+nodeName+"/nope"); code != http.StatusNotFound {
		t.Errorf("logs of an unknown container: %d, want 404", code)
	}

	// /runningpods/: the pod from the runtime.
	code, body := get(t, local, "http://localhost/runningpods/")
	var running v1.PodList
	if code != http.StatusOK || json.Unmarshal(body, &running) != nil || len(running.Items) != 1 || running.Items[0].UID != p.UID {
		t.Errorf("/runningpods/: %d %s", code, body)
	}

	// /stats/summary: the pod with CPU and memory figures.
	var ps *statsapi.PodStats
	waitFor(t, "the pod's CPU and memory in /stats/summary", 30*time.Second, func() bool {
		code, body := get(t, local, "http://localhost/stats/summary")
		var s statsapi.Summary
		if code != http.StatusOK || json.Unmarshal(body, &s) != nil {
			return false
		}
		for i := range s.Pods {
			if s.Pods[i].PodRef.UID == string(p.UID) {
				ps = &s.Pods[i]
			}
		}
		return ps != nil && ps.CPU != nil && ps.CPU.UsageCoreNanoSeconds != nil && *ps.CPU.UsageCoreNanoSeconds > 0 &&
			ps.Memory != nil && ps.Memory.WorkingSetBytes != nil && *ps.Memory.WorkingSetBytes > 0
	})
	if ps.PodRef.Name != "api-"+nodeName || ps.PodRef.Namespace != "default" {
		t.Errorf("summary pod ref %+v", ps.PodRef)
	}
	if len(ps.Containers) != 1 || ps.Containers[0].Name != "app" {
		t.Errorf("summary containers %+v", ps.Containers)
	}

	// /metrics: PLEG and prober metrics with the kubelet's names.
	waitFor(t, "prober_probe_total for the pod in /metrics", 30*time.Second, func() bool {
		code, body := get(t, local, "http://localhost/metrics")
		return code == http.StatusOK && strings.Contains(string(body), `prober_probe_total{`) &&
			strings.Contains(string(body), `pod="api-`+nodeName+`"`)
	})
	_, body = get(t, local, "http://localhost/metrics")
	if !strings.Contains(string(body), "kubelet_pleg_relist_duration_seconds") && !strings.Contains(string(body), "kubelet_evented_pleg_connection_total") {
		t.Error("/metrics has neither kubelet_pleg_relist_duration_seconds nor kubelet_evented_pleg_connection_total")
	}
	for _, m := range []string{"kubelet_runtime_operations_total", "kubelet_pod_worker_duration_seconds"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics has no %s", m)
		}
	}

	// The TLS API: anonymous requests are refused.
	tlsClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true,
	}}
	if code, _ := get(t, tlsClient, "https://"+addrs.Main.String()+"/pods"); code != http.StatusUnauthorized {
		t.Errorf("anonymous GET /pods over TLS: %d, want 401", code)
	}
}
