package agent_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodekit-dev/nodekit/internal/controlplane"
	"github.com/nodekit-dev/nodekit/internal/testterm"
)

// TestE2EKubectl: the kubelet API as the control plane uses it. The agent
// joins a real control plane serving its API with a certificate of the
// cluster's CA, authenticating the apiserver's client certificate against the
// cluster CA and bearer tokens with TokenReviews, authorizing with
// SubjectAccessReviews (authorization mode Webhook). Through the apiserver,
// kubectl: logs and logs -f (new lines appear), exec with stdin from a pipe,
// exec with a terminal (tty prints /dev/pts/...), attach to a container's
// stdin, port-forward to busybox httpd in the pod, and get --raw of the node
// proxy's /stats/summary and /metrics/resource. Directly on the agent's port,
// a ServiceAccount's token without RBAC rights on nodes/proxy gets 403 with the
// kubelet's message, and is let in once a ClusterRoleBinding grants them.
func TestE2EKubectl(t *testing.T) {
	t.Parallel()
	cp := controlplane.Start(t, controlplane.Options{})
	// The apiserver's node proxy refuses a node on a loopback address: the
	// node is on one of the host's own.
	hostIP := hostAddress(t)
	certFile, keyFile := cp.KubeletServingCert(t, nodeName, hostIP)
	h := newHarness(t, harnessOptions{
		server:     true,
		kubeconfig: cp.NodeKubeconfig(t, nodeName),
		nodeIP:     hostIP.String(),
		config: func(k *kubeletconfig.KubeletConfiguration) {
			k.Address = hostIP.String()
			k.TLSCertFile, k.TLSPrivateKeyFile = certFile, keyFile
			k.Authentication.X509.ClientCAFile = cp.CAFile
			on := true
			k.Authentication.Webhook.Enabled = &on
			k.Authorization.Mode = kubeletconfig.KubeletAuthorizationModeWebhook
			// Refusals are cached a second (default 30 s), so the RoleBinding
			// below is seen soon.
			k.Authorization.Webhook.CacheUnauthorizedTTL.Duration = time.Second
		},
	})
	rc, err := clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	apiWait := func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		waitFor(t, what, 2*time.Minute, cond)
	}
	kubectl := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := cp.Kubectl(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// kubectlCmd is a kubectl command as the admin, killed if it runs for
	// more than 2 minutes.
	kubectlCmd := func(t *testing.T, args ...string) *exec.Cmd {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		t.Cleanup(cancel)
		return cp.KubectlCommand(cctx, cp.AdminKubeconfig, args...)
	}

	// The node reports the port the agent bound (--port 0: a free one).
	port := h.agent.Addrs().Main.(*net.TCPAddr).Port
	apiWait(t, "the node Ready in the API", func() bool {
		n, err := admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range n.Status.Conditions {
			if c.Type == v1.NodeReady && c.Status == v1.ConditionTrue {
				if got := n.Status.DaemonEndpoints.KubeletEndpoint.Port; got != int32(port) {
					t.Fatalf("daemonEndpoints.kubeletEndpoint.port %d, want the bound port %d", got, port)
				}
				return true
			}
		}
		return false
	})

	grace := int64(2)
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: "default"}, Spec: v1.PodSpec{
		NodeName:                      nodeName,
		TerminationGracePeriodSeconds: &grace,
		Containers: []v1.Container{
			{Name: "app", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"sh", "-c",
				`trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo "line $i"; sleep 1 & wait $!; done`}},
			{Name: "web", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"sh", "-c",
				`mkdir -p /www && echo hello from the pod > /www/index.html && httpd -f -p 8080 -h /www & trap 'exit 0' TERM; wait`},
				Ports: []v1.ContainerPort{{ContainerPort: 8080}}},
			{Name: "att", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, Stdin: true, Command: []string{"sh", "-c",
				`trap 'exit 0' TERM; while read l; do echo "got:$l"; done`}},
		},
	}}
	if _, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	apiWait(t, "the pod Running and Ready in the API", func() bool {
		p, err := admin.CoreV1().Pods("default").Get(ctx, "tools", metav1.GetOptions{})
		return err == nil && p.Status.Phase == v1.PodRunning && podReady(p)
	})

	t.Run("logs", func(t *testing.T) {
		var last int
		apiWait(t, "two lines in kubectl logs", func() bool {
			last = lastLine(kubectl(t, "logs", "tools", "-c", "app"))
			return last >= 2
		})
		follow := startKubectl(t, cp, "logs", "-f", "tools", "-c", "app")
		follow.waitFor(t, fmt.Sprintf("a line after line %d in kubectl logs -f", last), func(out string) bool {
			return lastLine(out) > last
		})
	})

	t.Run("exec with stdin", func(t *testing.T) {
		cmd := kubectlCmd(t, "exec", "-i", "tools", "-c", "app", "--", "sh", "-c", "tr a-z A-Z; echo done >&2")
		cmd.Stdin = strings.NewReader("hello\nworld\n")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("kubectl exec -i: %v: %s", err, stderr.String())
		}
		if stdout.String() != "HELLO\nWORLD\n" || stderr.String() != "done\n" {
			t.Errorf("kubectl exec -i: stdout %q, stderr %q", stdout.String(), stderr.String())
		}
		// An exit code goes back to kubectl.
		cmd = kubectlCmd(t, "exec", "tools", "-c", "app", "--", "sh", "-c", "exit 3")
		var exitErr *exec.ExitError
		if err := cmd.Run(); !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
			t.Errorf("kubectl exec of exit 3: %v", err)
		}
	})

	t.Run("exec with a terminal", func(t *testing.T) {
		cmd := kubectlCmd(t, "exec", "-i", "-t", "tools", "-c", "app", "--", "tty")
		out, code := testterm.Run(t, cmd, "")
		if code != 0 || !regexp.MustCompile(`^/dev/pts/\d+\r?\n$`).MatchString(out) {
			t.Errorf("kubectl exec -it: exit %d, output %q (want the name of a /dev/pts terminal)", code, out)
		}
	})

	t.Run("attach", func(t *testing.T) {
		att := startKubectl(t, cp, "attach", "-i", "tools", "-c", "att")
		if _, err := io.WriteString(att.stdin, "hello\n"); err != nil {
			t.Fatal(err)
		}
		att.waitFor(t, "the attached container's answer", func(out string) bool { return strings.Contains(out, "got:hello") })
	})

	t.Run("port-forward", func(t *testing.T) {
		pf := startKubectl(t, cp, "port-forward", "pod/tools", ":8080")
		re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)
		var local string
		pf.waitFor(t, "kubectl port-forward listening", func(out string) bool {
			if m := re.FindStringSubmatch(out); m != nil {
				local = m[1]
				return true
			}
			return false
		})
		tr := &http.Transport{DisableKeepAlives: true}
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		var code int
		var body []byte
		var getErr error
		// httpd may still be starting: the pod is Ready as soon as it runs.
		waitFor(t, "a page through kubectl port-forward", time.Minute, func() bool {
			resp, err := c.Get("http://127.0.0.1:" + local + "/index.html")
			if getErr = err; err != nil {
				return false
			}
			defer resp.Body.Close()
			code = resp.StatusCode
			body, getErr = io.ReadAll(resp.Body)
			return getErr == nil && code == 200
		})
		if string(body) != "hello from the pod\n" {
			t.Errorf("GET through kubectl port-forward: %d %q", code, body)
		}
	})

	t.Run("node proxy", func(t *testing.T) {
		base := "/api/v1/nodes/" + nodeName + "/proxy"
		var sum statsapi.Summary
		if err := json.Unmarshal([]byte(kubectl(t, "get", "--raw", base+"/stats/summary")), &sum); err != nil {
			t.Fatal(err)
		}
		if sum.Node.NodeName != nodeName || sum.Node.CPU == nil || findPodStats(sum, "tools") == nil {
			t.Errorf("/stats/summary through the apiserver: node %q, %d pods", sum.Node.NodeName, len(sum.Pods))
		}
		var small statsapi.Summary
		if err := json.Unmarshal([]byte(kubectl(t, "get", "--raw", base+"/stats/summary?only_cpu_and_memory=true")), &small); err != nil {
			t.Fatal(err)
		}
		if p := findPodStats(small, "tools"); p == nil || p.CPU == nil || p.Memory == nil || p.Network != nil || len(p.Containers) != 3 {
			t.Errorf("/stats/summary?only_cpu_and_memory=true: pod %+v", p)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(kubectl(t, "get", "--raw", base+"/metrics/resource")))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, m := range fams["container_cpu_usage_seconds_total"].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["container"] == "app" && labels["pod"] == "tools" && labels["namespace"] == "default" && m.GetTimestampMs() > 0 {
				found = true
			}
		}
		if !found || fams["node_memory_working_set_bytes"] == nil || fams["resource_scrape_error"].GetMetric()[0].GetGauge().GetValue() != 0 {
			t.Errorf("/metrics/resource through the apiserver: %d families, app's CPU found %v", len(fams), found)
		}
	})

	t.Run("a token's rights", func(t *testing.T) {
		kubectl(t, "create", "serviceaccount", "reader")
		token := strings.TrimSpace(kubectl(t, "create", "token", "reader"))
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(cp.CAPEM)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		t.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		get := func(path, token string) (int, string) {
			t.Helper()
			req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+net.JoinHostPort(hostIP.String(), strconv.Itoa(port))+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		user := "system:serviceaccount:default:reader"
		if code, body := get("/pods", token); code != 403 || body != "Forbidden (user="+user+", verb=get, resource=nodes, subresource(s)=[pods proxy])\n" {
			t.Errorf("GET /pods with the token, no RBAC rights: %d %q", code, body)
		}
		if code, body := get("/pods", token+"x"); code != 401 {
			t.Errorf("GET /pods with a bad token: %d %q", code, body)
		}
		kubectl(t, "create", "clusterrole", "node-proxy", "--verb=get", "--resource=nodes/proxy")
		kubectl(t, "create", "clusterrolebinding", "reader-node-proxy", "--clusterrole=node-proxy", "--serviceaccount=default:reader")
		var code int
		var body string
		apiWait(t, "the token allowed /pods after the ClusterRoleBinding", func() bool {
			code, body = get("/pods", token)
			return code == 200
		})
		var list v1.PodList
		if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Items) == 0 {
			t.Errorf("GET /pods with the token: %v, %d pods", err, len(list.Items))
		}
		// nodes/proxy is not nodes/stats.
		if code, body := get("/stats/summary", token); code != 403 || body != "Forbidden (user="+user+", verb=get, resource=nodes, subresource(s)=[stats])\n" {
			t.Errorf("GET /stats/summary with the token, nodes/proxy only: %d %q", code, body)
		}
	})
}

// hostAddress is an IPv4 address of the host that is not loopback nor link
// local, on an interface that is not a test network's (nk...: they come and go).
func hostAddress(t *testing.T) net.IP {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || strings.HasPrefix(ifc.Name, "nk") {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.To4()
			}
		}
	}
	t.Fatal("the host has no global unicast IPv4 address for the node")
	return nil
}

var lineRE = regexp.MustCompile(`(?m)^line (\d+)$`)

// lastLine is the highest N of the "line N" lines in out (0: none).
func lastLine(out string) int {
	n := 0
	for _, m := range lineRE.FindAllStringSubmatch(out, -1) {
		if v, _ := strconv.Atoi(m[1]); v > n {
			n = v
		}
	}
	return n
}

func findPodStats(s statsapi.Summary, name string) *statsapi.PodStats {
	for i := range s.Pods {
		if s.Pods[i].PodRef.Name == name {
			return &s.Pods[i]
		}
	}
	return nil
}

// bgKubectl is a kubectl running beside the test, its output collected.
type bgKubectl struct {
	stdin io.WriteCloser
	mu    sync.Mutex
	out   bytes.Buffer
}

func (b *bgKubectl) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

func (b *bgKubectl) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// waitFor polls the output until cond holds.
func (b *bgKubectl) waitFor(t *testing.T, what string, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond(b.output()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; kubectl wrote:\n%s", what, b.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startKubectl starts kubectl as the admin; the test's cleanup kills it.
func startKubectl(t *testing.T, cp *controlplane.ControlPlane, args ...string) *bgKubectl {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := cp.KubectlCommand(ctx, cp.AdminKubeconfig, args...)
	b := &bgKubectl{}
	cmd.Stdout, cmd.Stderr = b, b
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	b.stdin = stdin
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	return b
}
