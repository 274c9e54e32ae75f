package controlplane

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
)

// KubeletServingCert writes a serving certificate for the kubelet API of node
// nodeName, signed by the CA, for the node's name, localhost, 127.0.0.1 and
// ips, and returns the paths of the certificate and its key. The apiserver
// verifies kubelets against the CA (--kubelet-certificate-authority), so a node
// agent serving with it can be reached for logs, exec, attach, port-forward and
// the node proxy.
func (cp *ControlPlane) KubeletServingCert(t testing.TB, nodeName string, ips ...net.IP) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, err := cp.WriteKubeletServingCert(nodeName, ips...)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// WriteKubeletServingCert is KubeletServingCert for use outside a test.
func (cp *ControlPlane) WriteKubeletServingCert(nodeName string, ips ...net.IP) (certFile, keyFile string, err error) {
	if !nodeNameRE.MatchString(nodeName) {
		return "", "", fmt.Errorf("controlplane: %q is not a valid node name", nodeName)
	}
	cert, key, err := cp.ca.issue(certSpec{
		cn:     "system:node:" + nodeName,
		orgs:   []string{"system:nodes"},
		dns:    []string{nodeName, "localhost"},
		ips:    append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, ips...),
		server: true,
	})
	if err != nil {
		return "", "", fmt.Errorf("controlplane: kubelet serving certificate: %w", err)
	}
	certFile = filepath.Join(cp.Dir, "kubelet-"+nodeName+".crt")
	keyFile = filepath.Join(cp.Dir, "kubelet-"+nodeName+".key")
	if err := writeFiles(map[string][]byte{certFile: cert, keyFile: key}); err != nil {
		return "", "", fmt.Errorf("controlplane: %w", err)
	}
	return certFile, keyFile, nil
}

// KubectlCommand returns a kubectl command with kubeconfig and args, not
// started, for what runs beside the test (logs -f, port-forward, a terminal):
// the caller sets its stdio, starts and waits for it; ctx ending kills it.
func (cp *ControlPlane) KubectlCommand(ctx context.Context, kubeconfig string, args ...string) *exec.Cmd {
	full := append([]string{"--kubeconfig=" + kubeconfig, "--cache-dir=" + filepath.Join(cp.Dir, "kubectl-cache")}, args...)
	return exec.CommandContext(ctx, cp.kubectl, full...)
}
