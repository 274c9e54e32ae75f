package agent

import (
	"strings"
	"testing"
)

// TestClientCertFlags: --bootstrap-kubeconfig, --cert-dir and
// --rotate-certificates (over the file's rotateCertificates), and a bootstrap
// kubeconfig without the kubeconfig it would write refused.
func TestClientCertFlags(t *testing.T) {
	c, err := loadWith(t, "", "--kubeconfig=/k.conf", "--bootstrap-kubeconfig=/b.conf", "--cert-dir=/pki", "--rotate-certificates")
	if err != nil {
		t.Fatal(err)
	}
	if c.Kubeconfig != "/k.conf" || c.BootstrapKubeconfig != "/b.conf" || c.CertDir != "/pki" || !c.Kubelet.RotateCertificates {
		t.Errorf("kubeconfig %q, bootstrap %q, cert dir %q, rotate %v", c.Kubeconfig, c.BootstrapKubeconfig, c.CertDir, c.Kubelet.RotateCertificates)
	}
	const file = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nrotateCertificates: true\n"
	if c, err = loadWith(t, file, "--kubeconfig=/k.conf"); err != nil || !c.Kubelet.RotateCertificates || c.CertDir != "" {
		t.Errorf("from the file: rotate %v, cert dir %q (%v); want true and the default", c.Kubelet.RotateCertificates, c.CertDir, err)
	}
	if c, err = loadWith(t, file, "--kubeconfig=/k.conf", "--rotate-certificates=false"); err != nil || c.Kubelet.RotateCertificates {
		t.Errorf("the flag over the file: rotate %v (%v)", c.Kubelet.RotateCertificates, err)
	}
	a := &Agent{cfg: &Config{RootDir: "/var/lib/x"}}
	if got := a.certDir(); got != "/var/lib/x/pki" {
		t.Errorf("default cert dir %q, want <root-dir>/pki", got)
	}
	if _, err := loadWith(t, "", "--bootstrap-kubeconfig=/b.conf"); err == nil || !strings.Contains(err.Error(), "--bootstrap-kubeconfig needs --kubeconfig") {
		t.Errorf("a bootstrap kubeconfig alone: %v", err)
	}
}
