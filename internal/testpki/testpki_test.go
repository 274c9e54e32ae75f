package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"slices"
	"testing"
	"time"
)

// verify checks a DER certificate against ca for client authentication at
// time at.
func verify(ca *CA, der []byte, at time.Time) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return cert, err
}

func TestNewCA(t *testing.T) {
	ca := NewCA(t, "test-ca")
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "test-ca" {
		t.Errorf("CA certificate: IsCA %v, subject %s", ca.Cert.IsCA, ca.Cert.Subject)
	}
	block, _ := pem.Decode(ca.PEM)
	if block == nil || block.Type != "CERTIFICATE" || !slices.Equal(block.Bytes, ca.Cert.Raw) {
		t.Error("PEM is not the CA certificate")
	}
}

func TestKeyPair(t *testing.T) {
	ca := NewCA(t, "test-ca")
	now := time.Now()
	subject := pkix.Name{CommonName: "system:node:a", Organization: []string{"system:nodes"}}
	certPEM, keyPEM := ca.KeyPair(t, subject, now.Add(-time.Minute), now.Add(time.Hour))
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("the pair does not match: %v", err)
	}
	cert, err := verify(ca, pair.Certificate[0], now)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if cert.Subject.CommonName != subject.CommonName || !slices.Equal(cert.Subject.Organization, subject.Organization) {
		t.Errorf("subject %s, want %s", cert.Subject, subject)
	}
	if _, err := verify(ca, pair.Certificate[0], now.Add(2*time.Hour)); err == nil {
		t.Error("verified after notAfter")
	}
	// serial numbers differ
	other, _ := ca.KeyPair(t, subject, now.Add(-time.Minute), now.Add(time.Hour))
	b1, _ := pem.Decode(certPEM)
	b2, _ := pem.Decode(other)
	c1, _ := x509.ParseCertificate(b1.Bytes)
	c2, _ := x509.ParseCertificate(b2.Bytes)
	if c1.SerialNumber.Cmp(c2.SerialNumber) == 0 {
		t.Errorf("two certificates with serial %v", c1.SerialNumber)
	}
}

func TestClientCert(t *testing.T) {
	ca, other := NewCA(t, "test-ca"), NewCA(t, "other-ca")
	c := ca.ClientCert(t, pkix.Name{CommonName: "alice", Organization: []string{"g"}})
	if _, err := verify(ca, c.Certificate[0], time.Now()); err != nil {
		t.Errorf("verify with its CA: %v", err)
	}
	if _, err := verify(other, c.Certificate[0], time.Now()); err == nil {
		t.Error("verified with another CA")
	}
	if c.PrivateKey == nil {
		t.Error("no private key")
	}
}
