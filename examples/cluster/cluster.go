package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodekit-dev/nodekit/internal/controlplane"
)

// cluster is a running control plane and its nodes.
type cluster struct {
	o          options
	cp         *controlplane.ControlPlane
	kubeconfig string // the admin's, copied to o.dir
	admin      kubernetes.Interface
	nodes      []*node
}

// node is one nodekit-kubelet process.
type node struct {
	name, root, log, cgroupRoot string
	port                        int
	args                        []string // nodekit-kubelet's
	cmd                         *exec.Cmd
	done                        chan struct{} // closed when it exited; err is then set
	err                         error
}

const (
	// startTimeout bounds the control plane's start, the nodes' Ready and
	// the sample's rollout, each.
	startTimeout = 3 * time.Minute
	// stopTimeout is how long a node has to stop its pods and exit after
	// SIGTERM before it is killed.
	stopTimeout = 2 * time.Minute
)

// start starts the control plane and the nodes, waits until every node is
// Ready and applies the sample. On error it returns what it started, for
// Close.
func start(ctx context.Context, o options) (*cluster, error) {
	if o.controlPlane == "" {
		return nil, fmt.Errorf("no control plane: give -controlplane-dir or $%s (make run-cluster does)", controlplane.DirEnv)
	}
	if _, err := os.Stat(o.kubeletBin()); err != nil {
		return nil, fmt.Errorf("nodekit-kubelet: %w (make build makes it)", err)
	}
	images, err := filepath.Glob(filepath.Join(o.images, "*.tar"))
	if err != nil || len(images) == 0 {
		return nil, fmt.Errorf("no image archives in %s (make images makes them)", o.images)
	}
	if o.nodes < 1 {
		return nil, fmt.Errorf("-nodes %d: want at least 1", o.nodes)
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.out, "== starting the control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler from %s)\n", o.controlPlane)
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	cp, err := controlplane.New(cctx, controlplane.Options{Dir: o.controlPlane, Timeout: startTimeout,
		NodeMonitorGracePeriod: o.nodeMonitorGrace,
		Logf:                   func(format string, args ...any) { o.log.Info(fmt.Sprintf(format, args...)) }})
	if err != nil {
		return nil, err
	}
	c := &cluster{o: o, cp: cp, kubeconfig: filepath.Join(o.dir, "kubeconfig")}
	data, err := os.ReadFile(cp.AdminKubeconfig)
	if err == nil {
		err = os.WriteFile(c.kubeconfig, data, 0o600)
	}
	if err != nil {
		return c, fmt.Errorf("the admin kubeconfig: %w", err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return c, err
	}
	if c.admin, err = kubernetes.NewForConfig(rc); err != nil {
		return c, err
	}
	fmt.Fprintf(o.out, "   %s is up\n", cp.URL)

	for i := range o.nodes {
		n, err := c.startNode(ctx, fmt.Sprintf("node-%c", 'a'+i), images)
		if n != nil {
			c.nodes = append(c.nodes, n)
		}
		if err != nil {
			return c, err
		}
	}
	if err := c.waitReady(ctx); err != nil {
		return c, err
	}
	if o.sample != "" {
		fmt.Fprintf(o.out, "== kubectl apply -f %s\n", o.sample)
		if err := c.kubectl(ctx, "apply", "-f", o.sample); err != nil {
			return c, err
		}
		if err := c.kubectl(ctx, "wait", "--for=condition=Available", "deployment", "--all", "--timeout="+startTimeout.String()); err != nil {
			return c, err
		}
	}
	return c, nil
}

// startNode imports the images into the node's embedded runtime and starts
// nodekit-kubelet as node name, with node credentials and a kubelet API
// serving certificate the apiserver trusts.
func (c *cluster) startNode(ctx context.Context, name string, images []string) (*node, error) {
	o := c.o
	n := &node{name: name, root: filepath.Join(o.dir, name), log: filepath.Join(o.dir, name+".log"),
		cgroupRoot: o.cgroupPrefix + "-" + name}
	if err := os.Remove(n.log); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	fmt.Fprintf(o.out, "== %s: importing the images, starting nodekit-kubelet (root %s, log %s)\n", name, n.root, n.log)
	imp := exec.CommandContext(ctx, o.kubeletBin(), append([]string{"import", "--root-dir", n.root}, images...)...)
	if out, err := imp.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: import: %w: %s", name, err, out)
	}
	kubeconfig, err := c.cp.WriteNodeKubeconfig(name)
	if err != nil {
		return nil, err
	}
	cert, key, err := c.cp.WriteKubeletServingCert(name)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	n.port = ports[0]
	n.args = []string{
		"--root-dir", n.root,
		"--hostname-override", name,
		"--node-ip", "127.0.0.1",
		"--kubeconfig", kubeconfig,
		"--address", "127.0.0.1",
		"--port", strconv.Itoa(ports[0]),
		"--healthz-port", strconv.Itoa(ports[1]),
		"--pod-logs-dir", filepath.Join(n.root, "logs"),
		"--cgroup-root", n.cgroupRoot,
		"--tls-cert-file", cert,
		"--tls-private-key-file", key,
		"--client-ca-file", c.cp.CAFile,
		"--authentication-token-webhook",
		"--authorization-mode", "Webhook",
		"--stop-pods-on-exit",
	}
	if o.cniConfDir != "" {
		n.args = append(n.args, "--cni-conf-dir", o.cniConfDir)
	}
	if o.cniBinDir != "" {
		n.args = append(n.args, "--cni-bin-dir", o.cniBinDir)
	}
	if err := c.launch(n); err != nil {
		return nil, err
	}
	return n, nil
}

// launch starts the node's nodekit-kubelet, its output appended to its log.
func (c *cluster) launch(n *node) error {
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	n.cmd = exec.Command(c.o.kubeletBin(), n.args...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.SysProcAttr = nodeProcAttr()
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	done := make(chan struct{})
	n.done, n.err = done, nil
	go func() {
		n.err = n.cmd.Wait()
		close(done)
	}()
	return nil
}

// waitReady waits until every node is Ready in the API, failing early when a
// node exits.
func (c *cluster) waitReady(ctx context.Context) error {
	fmt.Fprintln(c.o.out, "== waiting for the nodes to be Ready")
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, startTimeout, true, func(ctx context.Context) (bool, error) {
		for _, n := range c.nodes {
			select {
			case <-n.done:
				return false, fmt.Errorf("%s exited: %v; its log ends:\n%s", n.name, n.err, logTail(n.log, 20))
			default:
			}
			got, err := c.admin.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
			if err != nil || !ready(got) {
				return false, nil
			}
		}
		return true, nil
	})
}

func ready(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// show prints the nodes, the pods and how to reach the cluster.
func (c *cluster) show(ctx context.Context) error {
	fmt.Fprintln(c.o.out, "\n$ kubectl get nodes -o wide")
	if err := c.kubectl(ctx, "get", "nodes", "-o", "wide"); err != nil {
		return err
	}
	fmt.Fprintln(c.o.out, "\n$ kubectl get pods -A -o wide")
	if err := c.kubectl(ctx, "get", "pods", "-A", "-o", "wide"); err != nil {
		return err
	}
	kubectl := filepath.Join(c.o.controlPlane, "bin", "kubectl")
	fmt.Fprintf(c.o.out, `
The cluster is yours while this runs. In another terminal (as root):

  export KUBECONFIG=%s
  alias kubectl=%s
  kubectl get nodes
  kubectl logs deployment/web
  kubectl exec -it deployment/web -- sh
  kubectl port-forward deployment/web 8080:8080   # then: curl http://127.0.0.1:8080/
  kubectl get events --sort-by=.lastTimestamp

Each node's log: %s/node-*.log
`, c.kubeconfig, kubectl, c.o.dir)
	return nil
}

// kubectl runs kubectl with the admin kubeconfig, its output to the user.
func (c *cluster) kubectl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.o.controlPlane, "bin", "kubectl"), append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = c.o.out, c.o.out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// Close stops the nodes (SIGTERM: they stop their pods gracefully; SIGKILL
// after stopTimeout), then the control plane, and removes the nodes'
// directories and cgroups.
func (c *cluster) Close() error {
	var errs []error
	for _, n := range c.nodes {
		if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("%s: %w", n.name, err))
		}
	}
	for _, n := range c.nodes {
		select {
		case <-n.done:
		case <-time.After(stopTimeout):
			errs = append(errs, fmt.Errorf("%s did not stop within %v; killed (its log: %s)", n.name, stopTimeout, n.log))
			n.cmd.Process.Kill()
			<-n.done
		}
		if n.err != nil {
			var ee *exec.ExitError
			if !errors.As(n.err, &ee) || ee.ExitCode() != 0 {
				errs = append(errs, fmt.Errorf("%s exited: %v (its log: %s)", n.name, n.err, n.log))
			}
		}
	}
	if c.cp != nil {
		errs = append(errs, c.cp.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return err // keep the logs to look at
	}
	for _, n := range c.nodes {
		errs = append(errs, removeCgroups(n.cgroupRoot))
	}
	if mounts := mountsUnder(c.o.dir); len(mounts) > 0 {
		return fmt.Errorf("mounts left under %s, not removed: %s", c.o.dir, strings.Join(mounts, ", "))
	}
	errs = append(errs, os.RemoveAll(c.o.dir))
	return errors.Join(errs...)
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// removeCgroups removes the (empty) cgroup root of a node from every
// hierarchy, deepest first.
func removeCgroups(root string) error {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + root)
	dirs = append(dirs, "/sys/fs/cgroup"+root)
	var errs []error
	for _, top := range dirs {
		var all []string
		// The callback skips what cannot be read and never fails the walk.
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		slices.Reverse(all)
		for _, d := range all {
			if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points under dir.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

// logTail returns the last n lines of a file.
func logTail(file string, n int) string {
	data, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
