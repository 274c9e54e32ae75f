package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodekit-dev/nodekit/internal/controlplane"
	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testnet"
	"github.com/nodekit-dev/nodekit/internal/testterm"
)

// TestCluster is `make run-cluster` with kubectl as a user drives it: the
// control plane and two nodekit-kubelet processes (the real binary, its
// embedded runtime, node credentials), the sample deployment of three
// replicas spread over both nodes, Running and Ready; then, for a pod on each
// node, through the API server: kubectl logs, exec with stdin, exec -it on a
// terminal, port-forward; a `kubectl create deployment`; and a kubectl delete
// that runs the preStop hook (its line reaches a `kubectl logs -f`) before the
// pod object goes. At the end the nodes stop their pods and nothing is left.
func TestCluster(t *testing.T) {
	testenv.RequireRoot(t)
	kubelet := testenv.Binary(t, "nodekit-kubelet")
	images := filepath.Dir(testenv.Image(t, "busybox"))
	cpDir := os.Getenv(controlplane.DirEnv)
	if cpDir == "" {
		testenv.Skip(t, "$"+controlplane.DirEnv+" not set; run `make test` (it builds the control plane and sets it)")
	}
	net := testnet.New(t, "nkc", "10.192.0.0/10")
	dir := testenv.TempDir(t, "nkcl")
	logs := &testenv.LogBuffer{}
	o := options{
		bin: filepath.Dir(kubelet), images: images, controlPlane: cpDir,
		dir: filepath.Join(dir, "cluster"), sample: "web.yaml", nodes: 2,
		cgroupPrefix: "/nodekit-cluster-test-" + filepath.Base(dir),
		cniConfDir:   net.ConfDir, cniBinDir: strings.Join(testnet.BinDirs, ":"),
		out: logs, log: slog.New(slog.NewTextHandler(logs, nil)),
		// NotReady 20 s after a node's last lease renewal, not 50.
		nodeMonitorGrace: 20 * time.Second,
	}
	ctx := t.Context()
	c, err := start(ctx, o)
	t.Cleanup(func() {
		if c != nil {
			if err := c.Close(); err != nil {
				t.Errorf("stopping the cluster: %v", err)
			}
			if _, err := os.Stat(o.dir); err == nil {
				t.Errorf("%s left behind", o.dir)
			}
		}
		if t.Failed() {
			t.Logf("run-cluster's output:\n%s", logs.String())
			for _, n := range c.nodeList() {
				t.Logf("%s's log ends:\n%s", n.name, logTail(n.log, 80))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := c.cp.Kubectl(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// The sample: three replicas over both nodes, each answering as itself.
	pods := c.pods(t, "app=web", 3)
	byNode := map[string]*v1.Pod{}
	for _, p := range pods {
		byNode[p.Spec.NodeName] = p
	}
	if len(byNode) != 2 {
		t.Fatalf("the sample's pods are on %d node(s), want both: %v", len(byNode), podNodes(pods))
	}
	for nodeName, p := range byNode {
		t.Run(nodeName, func(t *testing.T) {
			hello := fmt.Sprintf("hello from %s on %s", p.Name, nodeName)
			if out := kubectl("logs", p.Name); !strings.Contains(out, "serving on :8080 as "+p.Name+" on "+nodeName) {
				t.Errorf("kubectl logs: %q", out)
			}
			if out := kubectl("exec", p.Name, "--", "cat", "/www/index.html"); strings.TrimSpace(out) != hello {
				t.Errorf("kubectl exec: %q, want %q", out, hello)
			}
			cmd := c.cp.KubectlCommand(ctx, c.kubeconfig, "exec", "-i", p.Name, "--", "sh", "-c", "tr a-z A-Z; echo done")
			cmd.Stdin = strings.NewReader("through stdin\n")
			if out, err := cmd.CombinedOutput(); err != nil || string(out) != "THROUGH STDIN\ndone\n" {
				t.Errorf("kubectl exec -i: %q %v", out, err)
			}
			term, code := testterm.Run(t, c.cp.KubectlCommand(ctx, c.kubeconfig, "exec", "-it", p.Name, "--", "sh"),
				"stty size; tty; exit 3\r")
			if !strings.Contains(term, "30 100\r\n/dev/pts/") || code != 3 {
				t.Errorf("kubectl exec -it: exit %d, the terminal showed %q", code, term)
			}
			if got := portForward(t, c, p.Name); got != hello {
				t.Errorf("through kubectl port-forward: %q, want %q", got, hello)
			}
		})
	}

	// kubectl create deployment: the scheduler spreads it, the nodes run it.
	// The image is imported into the nodes, in no registry: the deployment
	// kubectl makes gets imagePullPolicy IfNotPresent before it is created
	// (a pull would look the registry's name up outside this machine).
	manifest := kubectl("create", "deployment", "echo", "--image=nodekit.local/busybox:latest", "--replicas=3",
		"--dry-run=client", "-o", "json", "--", "sh", "-c", "echo started; exec sleep 3600")
	var d appsv1.Deployment
	if err := json.Unmarshal([]byte(manifest), &d); err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].ImagePullPolicy = v1.PullIfNotPresent
	if _, err := c.admin.AppsV1().Deployments("default").Create(ctx, &d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubectl("rollout", "status", "deployment/echo", "--timeout=3m")
	echo := c.pods(t, "app=echo", 3)
	t.Logf("kubectl create deployment: pods on %v", podNodes(echo))

	// kubectl delete: the preStop hook runs (its line reaches a following
	// kubectl logs -f) before the container stops; then the object is gone
	// and the ReplicaSet's replacement runs.
	victim := byNode["node-b"]
	// Bounded: a follow that never ends fails the test rather than hanging it.
	followCtx, cancelFollow := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelFollow()
	follow := c.cp.KubectlCommand(followCtx, c.kubeconfig, "logs", "-f", victim.Name)
	var stderr strings.Builder
	follow.Stderr = &stderr
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	// Delete once the follow is under way (it printed the log so far). The
	// first line is "serving on" (stdout) or one of httpd's request lines
	// (stderr): the two streams reach the log through separate pipes, so their
	// order in it is not guaranteed (CI saw a probe's line first, once).
	first, ok := <-lines
	if !ok {
		t.Fatalf("kubectl logs -f ended before its first line: %s", stderr.String())
	}
	kubectl("delete", "pod", victim.Name, "--wait=false")
	goodbye := "goodbye from " + victim.Name
	seen := []string{first}
	for line := range lines {
		seen = append(seen, line)
		if line == goodbye {
			break
		}
	}
	if !slices.Contains(seen, goodbye) {
		t.Errorf("kubectl logs -f ended without the preStop hook's line: %q", seen)
	}
	if err := follow.Wait(); err != nil {
		t.Errorf("kubectl logs -f did not end with its container: %v: %s", err, stderr.String())
	}
	waitFor(t, "the deleted pod gone from the API", func() bool {
		_, err := c.admin.CoreV1().Pods("default").Get(ctx, victim.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	after := c.pods(t, "app=web", 3)
	if slices.ContainsFunc(after, func(p *v1.Pod) bool { return p.Name == victim.Name }) {
		t.Errorf("the deleted pod is back: %v", podNodes(after))
	}

	// kill -9 of node-b's agent: its pods keep running, its Lease is no longer
	// renewed and the controller manager marks the node NotReady (Unknown)
	// and its pods not Ready. Started again, it adopts them without
	// restarting any: the same containers, no restarts, Ready again in the API.
	nb := c.nodeList()[1]
	running := map[string]string{} // pod → container ID, before
	for _, p := range append(c.pods(t, "app=web", 3), c.pods(t, "app=echo", 3)...) {
		if p.Spec.NodeName == nb.name {
			running[p.Name] = p.Status.ContainerStatuses[0].ContainerID
		}
	}
	if len(running) == 0 {
		t.Fatalf("no pod on %s to adopt", nb.name)
	}
	if err := nb.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-nb.done
	lease, err := c.admin.CoordinationV1().Leases("kube-node-lease").Get(ctx, nb.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, nb.name+" NotReady and its pods not Ready", func() bool {
		n, err := c.admin.CoreV1().Nodes().Get(ctx, nb.name, metav1.GetOptions{})
		if err != nil || ready(n) {
			return false
		}
		for name := range running {
			p, err := c.admin.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil || podReady(p) {
				return false
			}
		}
		return true
	})
	if l, err := c.admin.CoordinationV1().Leases("kube-node-lease").Get(ctx, nb.name, metav1.GetOptions{}); err != nil ||
		!l.Spec.RenewTime.Equal(lease.Spec.RenewTime) {
		t.Errorf("the dead node's lease changed: %v → %v (%v)", lease.Spec.RenewTime, l.Spec.RenewTime, err)
	}
	if err := c.launch(nb); err != nil {
		t.Fatal(err)
	}
	if err := c.waitReady(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the adopted pods Ready again in the API", func() bool {
		for name := range running {
			p, err := c.admin.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil || p.Status.Phase != v1.PodRunning || !podReady(p) {
				return false
			}
		}
		return true
	})
	for name, id := range running {
		p, err := c.admin.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.ContainerID != id || cs.RestartCount != 0 || cs.State.Running == nil {
			t.Errorf("%s after the restart: container %s (was %s), restarts %d, state %+v", name, cs.ContainerID, id, cs.RestartCount, cs.State)
		}
	}

	// node-a's agent frozen (SIGSTOP) as long as a partition: NotReady, its
	// pods marked not Ready by the controller manager. Thawed, the same
	// process sees that the API says otherwise than it and writes its
	// statuses again: Ready, without a restart of anything.
	na := c.nodeList()[0]
	var onA []string
	for _, p := range c.pods(t, "app=web", 3) {
		if p.Spec.NodeName == na.name {
			onA = append(onA, p.Name)
		}
	}
	if len(onA) == 0 {
		t.Fatalf("no web pod on %s", na.name)
	}
	if err := na.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			if err := na.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}
	}
	defer thaw()
	waitFor(t, na.name+" NotReady and its web pods not Ready", func() bool {
		n, err := c.admin.CoreV1().Nodes().Get(ctx, na.name, metav1.GetOptions{})
		if err != nil || ready(n) {
			return false
		}
		for _, name := range onA {
			p, err := c.admin.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil || podReady(p) {
				return false
			}
		}
		return true
	})
	thaw()
	if err := c.waitReady(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the thawed node's pods Ready again in the API", func() bool {
		for _, name := range onA {
			p, err := c.admin.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil || !podReady(p) || p.Status.ContainerStatuses[0].RestartCount != 0 {
				return false
			}
		}
		return true
	})
	log, _ := os.ReadFile(na.log)
	if n := strings.Count(string(log), "differs from the agent's; writing it again"); n < len(onA) {
		t.Errorf("%s's log says it wrote %d pod statuses again, want at least %d", na.name, n, len(onA))
	}
}

// pods waits until n pods with the label selector are Running and Ready (and
// no more exist), and returns them.
func (c *cluster) pods(t *testing.T, selector string, n int) []*v1.Pod {
	t.Helper()
	var out []*v1.Pod
	waitFor(t, fmt.Sprintf("%d pods %s Running and Ready", n, selector), func() bool {
		l, err := c.admin.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false
		}
		out = out[:0]
		for i := range l.Items {
			p := &l.Items[i]
			if p.Status.Phase != v1.PodRunning || !podReady(p) || p.DeletionTimestamp != nil {
				return false
			}
			out = append(out, p)
		}
		return len(out) == n
	})
	return out
}

func (c *cluster) nodeList() []*node {
	if c == nil {
		return nil
	}
	return c.nodes
}

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func podNodes(pods []*v1.Pod) map[string]string {
	m := map[string]string{}
	for _, p := range pods {
		m[p.Name] = p.Spec.NodeName
	}
	return m
}

var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)

// portForward runs kubectl port-forward to the pod's port 8080 on a free
// local port and returns the page it serves there.
func portForward(t *testing.T, c *cluster, pod string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := c.cp.KubectlCommand(ctx, c.kubeconfig, "port-forward", "pod/"+pod, ":8080")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel() // port-forward runs until killed
		cmd.Wait()
	}()
	port := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if m := forwarding.FindStringSubmatch(s.Text()); m != nil {
				port <- m[1]
			}
		}
		close(port)
	}()
	p, ok := <-port
	if !ok {
		t.Fatal("kubectl port-forward ended without saying where it listens")
	}
	resp, err := http.Get("http://127.0.0.1:" + p + "/")
	if err != nil {
		t.Fatalf("through kubectl port-forward: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(body))
}

// waitFor polls cond every 100 ms until it holds, failing the test after 3
// minutes (a bound for a broken cluster, not a speed requirement).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
