package controlplane

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestKubernetesVersion(t *testing.T) {
	for _, tc := range []struct{ gomod, want string }{
		{"module m\n\nrequire (\n\tk8s.io/api v0.37.2\n\tk8s.io/apimachinery v0.37.2\n)\n", "v1.37.2"},
		{"module m\n\nrequire k8s.io/api v0.36.1 // indirect\n", "v1.36.1"},
		{"module m\n\nrequire k8s.io/apimachinery v0.37.2\n", ""},
	} {
		p := filepath.Join(t.TempDir(), "go.mod")
		if err := os.WriteFile(p, []byte(tc.gomod), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := kubernetesVersion(p)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: got %s, want an error", tc.gomod, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %s", tc.gomod, got, err, tc.want)
		}
	}
}

// A node's kubeconfig carries a client certificate for system:node:NAME in
// system:nodes that the CA verifies, and the CA itself.
func TestNodeKubeconfigCertificate(t *testing.T) {
	ca, err := newAuthority()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.issue(certSpec{cn: "system:node:node-a", orgs: []string{"system:nodes"}})
	if err != nil {
		t.Fatal(err)
	}
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
				CA     string `json:"certificate-authority-data"`
			} `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			Name string `json:"name"`
			User struct {
				Cert string `json:"client-certificate-data"`
				Key  string `json:"client-key-data"`
			} `json:"user"`
		} `json:"users"`
		CurrentContext string `json:"current-context"`
	}
	if err := yaml.Unmarshal(kubeconfig("https://127.0.0.1:6443", ca.certPEM, certPEM, keyPEM, "system:node:node-a"), &kc); err != nil {
		t.Fatal(err)
	}
	if len(kc.Clusters) != 1 || len(kc.Users) != 1 || kc.CurrentContext != "nodekit" ||
		kc.Clusters[0].Cluster.Server != "https://127.0.0.1:6443" || kc.Users[0].Name != "system:node:node-a" {
		t.Fatalf("kubeconfig: %+v", kc)
	}
	decode := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := tlsClientConfig(decode(kc.Clusters[0].Cluster.CA), decode(kc.Users[0].User.Cert), decode(kc.Users[0].User.Key)); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(decode(kc.Users[0].User.Cert))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "system:node:node-a" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != "system:nodes" {
		t.Errorf("subject %s", cert.Subject)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the CA does not verify the node's client certificate: %v", err)
	}
}
