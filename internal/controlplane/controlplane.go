package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// DirEnv names the directory `make controlplane` builds into (binaries in its bin/).
const DirEnv = "NODEKIT_CONTROLPLANE_DIR"

// Options are the control plane's settings; the zero value is the usual choice.
type Options struct {
	// Dir is where `make controlplane` built the binaries (Dir/bin). Default:
	// $NODEKIT_CONTROLPLANE_DIR, else /var/cache/nodekit/controlplane/<version>
	// with the version of go.mod's k8s.io/api as v1.X.Y.
	Dir string
	// WorkDir is the control plane's own directory (certificates, kubeconfigs,
	// etcd's data). Default: a new temporary directory, removed by Close
	// (Start: the test's temporary directory).
	WorkDir string
	// Timeout bounds the start: etcd, the apiserver's /readyz, the other
	// components' /healthz and the default ServiceAccount (default 2 minutes).
	Timeout time.Duration
	// Logf receives what happens beside the errors returned (a component
	// killed after SIGTERM, a start retried); Start: the test's log.
	Logf func(format string, args ...any)
	// ClusterSigningDuration is the longest lifetime of the certificates
	// the controller manager signs (--cluster-signing-duration; default a
	// year, as the controller manager's): a minute or two lets a test see
	// a node agent renew its client certificate. The signer backdates
	// every certificate by 5 minutes, so a node renewing at 70-90% of the
	// lifetime it sees renews soon after, or at once.
	ClusterSigningDuration time.Duration
	// NodeMonitorGracePeriod is how long the controller manager waits for
	// a node's lease or status before it marks the node NotReady (Unknown)
	// (--node-monitor-grace-period; default the controller manager's 50 s).
	NodeMonitorGracePeriod time.Duration
	// AuditLog, when set, is a file the apiserver writes its audit log to:
	// one JSON event per line for every request, level Metadata (no bodies),
	// at the stages ResponseStarted and ResponseComplete, never rotated
	// (--audit-log-path). Close removes it only with the directory New
	// made (Options.WorkDir empty) when inside it.
	AuditLog string
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// URL is the apiserver's, https://127.0.0.1:PORT.
	URL string
	// CAFile holds CAPEM, the CA that signed every certificate (serving and
	// client) and that the controller manager signs CSRs with.
	CAFile string
	CAPEM  []byte
	// AdminKubeconfig is the path of a kubeconfig for a cluster admin
	// (a client certificate in group system:masters).
	AdminKubeconfig string
	// Dir is the control plane's own directory (certificates, kubeconfigs,
	// etcd's data), removed at cleanup.
	Dir string

	kubectl string
	ca      *authority
	procs   []*process
	logf    func(string, ...any)
	ownDir  bool
	// signing is the controller manager's --cluster-signing-duration;
	// monitorGrace its --node-monitor-grace-period (0: its default).
	signing      time.Duration
	monitorGrace time.Duration
	auditLog     string
}

// The components, in start order.
const (
	etcdName      = "etcd"
	apiserverName = "kube-apiserver"
	kcmName       = "kube-controller-manager"
	schedulerName = "kube-scheduler"
	kubectlName   = "kubectl"
)

const (
	serviceCIDR = "10.0.0.0/24"
	// stopWait is how long a component has to exit after SIGTERM, and again after SIGKILL.
	stopWait = 15 * time.Second
	// kubectlTimeout bounds one kubectl run.
	kubectlTimeout = 2 * time.Minute
	// logTail is how much of each component's log a failed test prints.
	logTail = 32 << 10
)

// Start starts a control plane for the test; the test's cleanup stops it and
// prints each component's log when the test failed.
func Start(t testing.TB, o Options) *ControlPlane {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	if runtime.GOOS != "linux" {
		testenv.Skip(t, "the control plane needs Linux")
	}
	if os.Geteuid() != 0 {
		testenv.Skip(t, "the control plane needs root (its binaries are in a directory of root's, and the tests that join it run the agent); run `sudo make test`")
	}
	if o.Dir == "" {
		o.Dir = os.Getenv(DirEnv)
	}
	if o.Dir == "" {
		o.Dir = defaultDir(t)
	}
	if err := checkBinaries(o.Dir); err != nil {
		testenv.Skip(t, err.Error()+"; run `make controlplane`")
	}
	if o.WorkDir == "" {
		o.WorkDir = testenv.TempDir(t, "nkcp")
	}
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(t.Context(), o.timeout())
	defer cancel()
	cp, err := New(ctx, o)
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	// Registered after TempDir's removal, so it runs before it.
	t.Cleanup(func() {
		if err := cp.Close(); err != nil {
			t.Errorf("controlplane: %v", err)
		}
		if t.Failed() {
			for _, p := range cp.procs {
				l := p.log.String()
				t.Logf("controlplane: %s log (%d bytes, the last %d):\n%s", p.name, len(l), min(len(l), logTail), tail(l, logTail))
			}
		}
	})
	return cp
}

// New starts a control plane: etcd, then the apiserver (until /readyz), then
// the controller manager and the scheduler (until /healthz), then waits for
// what a node joining needs. ctx bounds the start (Options.Timeout bounds it
// too); Close stops it. A start that lost a port it had picked to another
// process is retried with new ports.
func New(ctx context.Context, o Options) (*ControlPlane, error) {
	if o.Dir == "" {
		o.Dir = os.Getenv(DirEnv)
	}
	if o.Dir == "" {
		return nil, fmt.Errorf("controlplane: no binary directory (Options.Dir or $%s)", DirEnv)
	}
	if err := checkBinaries(o.Dir); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()
	bin := filepath.Join(o.Dir, "bin")
	cp := &ControlPlane{Dir: o.WorkDir, kubectl: filepath.Join(bin, kubectlName), logf: o.Logf, signing: o.ClusterSigningDuration, monitorGrace: o.NodeMonitorGracePeriod}
	cp.auditLog = o.AuditLog
	if cp.signing == 0 {
		cp.signing = certValidity
	}
	if cp.Dir == "" {
		d, err := os.MkdirTemp("", "nkcp")
		if err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
		cp.Dir, cp.ownDir = d, true
	}
	for attempt := 1; ; attempt++ {
		err := cp.start(ctx, bin)
		if err == nil {
			return cp, nil
		}
		lost := cp.lostPort()
		cerr := cp.stopAll()
		if lost && attempt < startAttempts && cerr == nil && ctx.Err() == nil {
			o.Logf("controlplane: a port picked for the start was taken meanwhile; starting again (%v)", err)
			cp.procs = nil
			if err := os.RemoveAll(filepath.Join(cp.Dir, "etcd")); err != nil {
				return nil, errors.Join(err, cp.removeDir())
			}
			continue
		}
		return nil, errors.Join(err, cerr, cp.removeDir())
	}
}

// startAttempts bounds the starts New tries when a port it picked was taken.
const startAttempts = 3

func (o Options) timeout() time.Duration {
	if o.Timeout == 0 {
		return 2 * time.Minute
	}
	return o.Timeout
}

// checkBinaries wants every component built in dir/bin.
func checkBinaries(dir string) error {
	bin := filepath.Join(dir, "bin")
	for _, name := range []string{etcdName, apiserverName, kcmName, schedulerName, kubectlName} {
		if fi, err := os.Stat(filepath.Join(bin, name)); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s not built in %s", name, bin)
		}
	}
	return nil
}

// lostPort tells whether a component exited because its port was taken.
func (cp *ControlPlane) lostPort() bool {
	for _, p := range cp.procs {
		select {
		case <-p.done:
			if strings.Contains(p.log.String(), "address already in use") {
				return true
			}
		default:
		}
	}
	return false
}

// Close stops the components in reverse order (SIGTERM, SIGKILL after a
// bounded wait), and removes the directory New made. It reports a component
// that had exited by itself.
func (cp *ControlPlane) Close() error {
	var crashed []string
	for _, p := range cp.procs {
		select {
		case <-p.done:
			crashed = append(crashed, fmt.Sprintf("%s: %v", p.name, p.err))
		default:
		}
	}
	var errs []error
	if len(crashed) > 0 {
		errs = append(errs, fmt.Errorf("exited while running: %s", strings.Join(crashed, "; ")))
	}
	errs = append(errs, cp.stopAll(), cp.removeDir())
	return errors.Join(errs...)
}

func (cp *ControlPlane) stopAll() error {
	var errs []error
	for i := len(cp.procs) - 1; i >= 0; i-- {
		if err := cp.procs[i].stop(cp.logf); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (cp *ControlPlane) removeDir() error {
	if !cp.ownDir {
		return nil
	}
	if err := os.RemoveAll(cp.Dir); err != nil {
		return fmt.Errorf("removing %s: %w", cp.Dir, err)
	}
	return nil
}

// defaultDir is where `make controlplane` builds by default.
func defaultDir(t testing.TB) string {
	t.Helper()
	gomod := filepath.Join(testenv.ModuleRoot(t), "go.mod")
	v, err := kubernetesVersion(gomod)
	if err != nil {
		t.Fatalf("controlplane: %v", err)
	}
	return filepath.Join("/var/cache/nodekit/controlplane", v)
}

// kubernetesVersion reads the version of k8s.io/api in gomod, v0.X.Y, and
// returns Kubernetes' v1.X.Y, as examples/controlplane/build.sh does.
func kubernetesVersion(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", fmt.Errorf("reading the Kubernetes version: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 0 && fields[0] == "require" {
			fields = fields[1:]
		}
		if len(fields) >= 2 && fields[0] == "k8s.io/api" {
			if v, ok := strings.CutPrefix(fields[1], "v0."); ok {
				return "v1." + v, nil
			}
			return "", fmt.Errorf("k8s.io/api %s in %s is not a v0.X.Y release", fields[1], gomod)
		}
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("reading %s: %w", gomod, err)
	}
	return "", fmt.Errorf("no k8s.io/api requirement in %s", gomod)
}

// start writes the certificates and kubeconfigs and starts the components.
func (cp *ControlPlane) start(ctx context.Context, bin string) error {
	// Ports: etcd client and peer, apiserver, controller manager, scheduler.
	ports, err := pickPorts(5)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer := ports[0], ports[1]
	cp.URL = "https://127.0.0.1:" + strconv.Itoa(ports[2])

	ca, err := newAuthority()
	if err != nil {
		return err
	}
	cp.ca, cp.CAPEM = ca, ca.certPEM
	path := func(name string) string { return filepath.Join(cp.Dir, name) }
	cp.CAFile = path("ca.crt")
	files := map[string][]byte{cp.CAFile: ca.certPEM, path("ca.key"): ca.keyPEM}

	// One serving certificate for every component: they all listen on 127.0.0.1.
	servingCert, servingKey, err := ca.issue(certSpec{
		cn:     "kube-apiserver",
		dns:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips:    []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 0, 1)},
		server: true,
	})
	if err != nil {
		return err
	}
	files[path("serving.crt")], files[path("serving.key")] = servingCert, servingKey
	saKey, saPub, err := serviceAccountKeys()
	if err != nil {
		return err
	}
	files[path("sa.key")], files[path("sa.pub")] = saKey, saPub
	// The apiserver's identity towards kubelets (logs, exec, port-forward).
	kcCert, kcKey, err := ca.issue(certSpec{cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}})
	if err != nil {
		return err
	}
	files[path("kubelet-client.crt")], files[path("kubelet-client.key")] = kcCert, kcKey

	var adminCert, adminKey []byte
	for _, c := range []struct{ file, cn, org string }{
		{"admin.kubeconfig", "nodekit-admin", "system:masters"},
		{"controller-manager.kubeconfig", "system:kube-controller-manager", ""},
		{"scheduler.kubeconfig", "system:kube-scheduler", ""},
	} {
		var orgs []string
		if c.org != "" {
			orgs = []string{c.org}
		}
		cert, key, err := ca.issue(certSpec{cn: c.cn, orgs: orgs})
		if err != nil {
			return err
		}
		files[path(c.file)] = kubeconfig(cp.URL, ca.certPEM, cert, key, c.cn)
		if c.file == "admin.kubeconfig" {
			adminCert, adminKey = cert, key
		}
	}
	cp.AdminKubeconfig = path("admin.kubeconfig")
	if err := writeFiles(files); err != nil {
		return err
	}
	tlsConf, err := tlsClientConfig(ca.certPEM, adminCert, adminKey)
	if err != nil {
		return err
	}
	admin := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}, Timeout: 10 * time.Second}
	defer admin.CloseIdleConnections()
	plain := &http.Client{Timeout: 10 * time.Second}
	defer plain.CloseIdleConnections()

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	if err := cp.run(bin, etcdName,
		"--name=nodekit",
		"--data-dir="+path("etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=nodekit="+peerURL,
		"--initial-cluster-state=new",
		// A test's data need not survive a crash of the machine.
		"--unsafe-no-fsync=true",
	); err != nil {
		return err
	}
	if err := cp.waitFor(ctx, "etcd's /health", func() error {
		return get(plain, etcdURL+"/health", `"health":"true"`)
	}); err != nil {
		return err
	}

	audit, err := cp.auditArgs(cp.auditLog)
	if err != nil {
		return err
	}
	if err := cp.run(bin, apiserverName, append([]string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--cert-dir=" + path("apiserver"),
		"--tls-cert-file=" + path("serving.crt"),
		"--tls-private-key-file=" + path("serving.key"),
		"--client-ca-file=" + cp.CAFile,
		// Bootstrap tokens (WriteBootstrapKubeconfig), as kubeadm's.
		"--enable-bootstrap-token-auth=true",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		// With a loopback advertise address the kubernetes Service's endpoints
		// cannot be reconciled (the apiserver logs errors every few seconds).
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + path("sa.pub"),
		"--service-account-signing-key-file=" + path("sa.key"),
		"--kubelet-client-certificate=" + path("kubelet-client.crt"),
		"--kubelet-client-key=" + path("kubelet-client.key"),
		"--kubelet-certificate-authority=" + cp.CAFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--allow-privileged=true",
		"--profiling=false",
	}, audit...)...); err != nil {
		return err
	}
	if err := cp.waitFor(ctx, "the apiserver's /readyz", func() error {
		return get(admin, cp.URL+"/readyz", "ok")
	}); err != nil {
		return err
	}

	component := func(name, kubeconfig string, port int, extra ...string) error {
		args := []string{
			"--kubeconfig=" + path(kubeconfig),
			"--authentication-kubeconfig=" + path(kubeconfig),
			"--authorization-kubeconfig=" + path(kubeconfig),
			"--client-ca-file=" + cp.CAFile,
			// No front proxy: do not look its CA up in kube-system (each
			// lookup of the missing key logs an error).
			"--authentication-skip-lookup=true",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--tls-cert-file=" + path("serving.crt"),
			"--tls-private-key-file=" + path("serving.key"),
			"--leader-elect=false",
			"--profiling=false",
		}
		return cp.run(bin, name, append(args, extra...)...)
	}
	kcmArgs := []string{
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + path("sa.key"),
		"--root-ca-file=" + cp.CAFile,
		"--cluster-signing-cert-file=" + cp.CAFile,
		"--cluster-signing-key-file=" + path("ca.key"),
		"--cluster-signing-duration=" + cp.signing.String(),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--cert-dir=" + path("controller-manager"),
	}
	if cp.monitorGrace > 0 {
		kcmArgs = append(kcmArgs, "--node-monitor-grace-period="+cp.monitorGrace.String())
	}
	if err := component(kcmName, "controller-manager.kubeconfig", ports[3], kcmArgs...); err != nil {
		return err
	}
	if err := component(schedulerName, "scheduler.kubeconfig", ports[4],
		"--cert-dir="+path("scheduler"),
	); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		port int
	}{{kcmName, ports[3]}, {schedulerName, ports[4]}} {
		url := "https://127.0.0.1:" + strconv.Itoa(c.port) + "/healthz"
		if err := cp.waitFor(ctx, c.name+"'s /healthz", func() error { return get(admin, url, "ok") }); err != nil {
			return err
		}
	}
	// What a node joining needs: the namespace of its Lease, and a ServiceAccount
	// for its pods (made by the controller manager).
	for what, p := range map[string]string{
		"the kube-node-lease namespace":         "/api/v1/namespaces/kube-node-lease",
		"the default ServiceAccount in default": "/api/v1/namespaces/default/serviceaccounts/default",
	} {
		if err := cp.waitFor(ctx, what, func() error { return get(admin, cp.URL+p, "") }); err != nil {
			return err
		}
	}
	return nil
}

// NodeKubeconfig writes a kubeconfig for node nodeName (a client certificate
// CN=system:node:<nodeName>, O=system:nodes, signed by the CA) and returns its path.
func (cp *ControlPlane) NodeKubeconfig(t testing.TB, nodeName string) string {
	t.Helper()
	p, err := cp.WriteNodeKubeconfig(nodeName)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteNodeKubeconfig is NodeKubeconfig for use outside a test.
func (cp *ControlPlane) WriteNodeKubeconfig(nodeName string) (string, error) {
	if !nodeNameRE.MatchString(nodeName) {
		return "", fmt.Errorf("controlplane: %q is not a valid node name", nodeName)
	}
	user := "system:node:" + nodeName
	cert, key, err := cp.ca.issue(certSpec{cn: user, orgs: []string{"system:nodes"}})
	if err != nil {
		return "", fmt.Errorf("controlplane: node certificate: %w", err)
	}
	p := filepath.Join(cp.Dir, "node-"+nodeName+".kubeconfig")
	if err := writeFiles(map[string][]byte{p: kubeconfig(cp.URL, cp.CAPEM, cert, key, user)}); err != nil {
		return "", fmt.Errorf("controlplane: %w", err)
	}
	return p, nil
}

// nodeNameRE is a DNS subdomain (a Node's name).
var nodeNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// Kubectl runs kubectl with the admin kubeconfig and returns its standard
// output; the error carries its standard error.
func (cp *ControlPlane) Kubectl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return cp.KubectlAs(t, cp.AdminKubeconfig, args...)
}

// KubectlAs runs kubectl with kubeconfig (a NodeKubeconfig, say), as Kubectl.
func (cp *ControlPlane) KubectlAs(t testing.TB, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), kubectlTimeout)
	defer cancel()
	full := append([]string{"--kubeconfig=" + kubeconfig, "--cache-dir=" + filepath.Join(cp.Dir, "kubectl-cache")}, args...)
	cmd := exec.CommandContext(ctx, cp.kubectl, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Logs returns the log of every component so far, each under a header.
func (cp *ControlPlane) Logs() string {
	var b strings.Builder
	for _, p := range cp.procs {
		fmt.Fprintf(&b, "===== %s (pid %d) =====\n%s\n", p.name, p.cmd.Process.Pid, p.log.String())
	}
	return b.String()
}

// process is a component Start started.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *testenv.LogBuffer
	done chan struct{} // closed when it exited; err is then set
	err  error
}

// run starts bin/name with args, its output into its log.
func (cp *ControlPlane) run(bin, name string, args ...string) error {
	p := &process{name: name, log: &testenv.LogBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(bin, name), args...)
	p.cmd.Dir = cp.Dir
	p.cmd.Env = componentEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	cp.procs = append(cp.procs, p)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return nil
}

// componentEnv is the test's environment less ETCD_* (etcd reads each as a
// flag) and KUBECONFIG.
func componentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "KUBECONFIG=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// exited returns a component that exited, if any.
func (cp *ControlPlane) exited() *process {
	for _, p := range cp.procs {
		select {
		case <-p.done:
			return p
		default:
		}
	}
	return nil
}

// waitFor polls check until it succeeds, a component exits or ctx ends.
func (cp *ControlPlane) waitFor(ctx context.Context, what string, check func() error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		if p := cp.exited(); p != nil {
			return fmt.Errorf("waiting for %s: %s exited: %v; its log ends:\n%s", what, p.name, p.err, tail(p.log.String(), 4<<10))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// get GETs url and wants 200 with want in the body.
func get(c *http.Client, url, want string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(want)) {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, tail(string(body), 512))
	}
	return nil
}

// stop ends the process: SIGTERM, SIGKILL after stopWait, and waits for it.
func (p *process) stop(logf func(string, ...any)) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping %s (pid %d): %w", p.name, p.cmd.Process.Pid, err)
	}
	timer := time.NewTimer(stopWait)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s (pid %d): %w", p.name, p.cmd.Process.Pid, err)
	}
	timer.Reset(stopWait)
	select {
	case <-p.done:
		logf("controlplane: %s (pid %d) was still running %v after SIGTERM and was killed", p.name, p.cmd.Process.Pid, stopWait)
		return nil
	case <-timer.C:
		return fmt.Errorf("%s (pid %d) still running %v after SIGKILL", p.name, p.cmd.Process.Pid, stopWait)
	}
}

// pickPorts is freePorts; a test replaces it.
var pickPorts = freePorts

// freePorts returns n distinct free loopback TCP ports, all held open until
// every one is chosen.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
