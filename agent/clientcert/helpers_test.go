package clientcert

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/nodekit-dev/nodekit/internal/testpki"
)

// nodeSubject is a node client certificate's subject.
func nodeSubject(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"system:nodes"}}
}

const (
	testNode   = "node-a"
	testServer = "https://127.0.0.1:6443"
)

// writeFile writes data at dir/name with mode and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// certKubeconfig is a kubeconfig for testServer with the pair embedded.
func certKubeconfig(caPEM, certPEM, keyPEM []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: u
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`, testServer, b64(caPEM), b64(certPEM), b64(keyPEM))
}

// tokenKubeconfig is a kubeconfig for testServer with a bearer token (a
// bootstrap kubeconfig).
func tokenKubeconfig(caPEM []byte) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: bootstrap
  user:
    token: abcdef.0123456789abcdef
contexts:
- name: x
  context: {cluster: c, user: bootstrap}
current-context: x
`, testServer, base64.StdEncoding.EncodeToString(caPEM))
}

// fakeAPI is a fake clientset the manager requests certificates from; it
// records the configs it was asked for.
type fakeAPI struct {
	*fake.Clientset
	mu      sync.Mutex
	configs []*rest.Config
}

func newFakeAPI() *fakeAPI { return &fakeAPI{Clientset: fake.NewClientset()} }

func (f *fakeAPI) newClient(rc *rest.Config) (kubernetes.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.configs = append(f.configs, rc)
	return f.Clientset, nil
}

// waitCSR polls until the fake holds a certificate signing request.
func (f *fakeAPI) waitCSR(t *testing.T) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	var got *certificatesv1.CertificateSigningRequest
	poll(t, "a certificate signing request", func() bool {
		l, err := f.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
		if err != nil || len(l.Items) == 0 {
			return false
		}
		got = &l.Items[0]
		return true
	})
	return got
}

// decide approves (signing it with ca, valid for lifetime) or denies req.
func (f *fakeAPI) decide(t *testing.T, req *certificatesv1.CertificateSigningRequest, ca *testpki.CA, lifetime time.Duration, approve bool) {
	t.Helper()
	req = req.DeepCopy()
	if approve {
		block, _ := pem.Decode(req.Spec.Request)
		cr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		req.Status.Certificate = ca.Sign(t, cr.PublicKey, cr.Subject, now.Add(-time.Minute), now.Add(lifetime))
		req.Status.Conditions = append(req.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: "True", Reason: "Test", Message: "approved by the test"})
	} else {
		req.Status.Conditions = append(req.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateDenied, Status: "True", Reason: "Test", Message: "denied by the test"})
	}
	if _, err := f.CertificatesV1().CertificateSigningRequests().UpdateStatus(context.Background(), req, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// poll polls cond every 10 ms until it holds, failing the test after a
// minute.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logBuffer is a log the test can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", b.String())
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// runManager runs m.Run until the test ends and checks it returned nil.
func runManager(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitReady waits for m's first certificate.
func waitReady(t *testing.T, m *Manager) {
	t.Helper()
	select {
	case <-m.Ready():
	case <-time.After(time.Minute):
		t.Fatal("timed out waiting for a certificate")
	}
}

func isReady(m *Manager) bool {
	select {
	case <-m.Ready():
		return true
	default:
		return false
	}
}
