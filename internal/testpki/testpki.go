package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"
)

// CA signs the tests' certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte // Cert, PEM-encoded (a client CA file, certificate-authority-data)

	mu     sync.Mutex
	serial int64
}

// NewCA makes a self-signed CA called name, valid from an hour ago for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testpki: CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpki: CA certificate: %v", err)
	}
	return &CA{Cert: cert, Key: key, PEM: encode("CERTIFICATE", der), serial: 1}
}

// Sign makes a client certificate (PEM) for the public key pub with subject,
// valid from notBefore to notAfter. Each gets a new serial number.
func (ca *CA) Sign(t testing.TB, pub any, subject pkix.Name, notBefore, notAfter time.Time) []byte {
	t.Helper()
	return encode("CERTIFICATE", ca.sign(t, pub, subject, notBefore, notAfter))
}

// KeyPair makes a key and a client certificate for it with subject, valid
// from notBefore to notAfter (both PEM).
func (ca *CA) KeyPair(t testing.TB, subject pkix.Name, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("testpki: marshal key: %v", err)
	}
	return ca.Sign(t, &key.PublicKey, subject, notBefore, notAfter), encode("EC PRIVATE KEY", der)
}

// ClientCert is a client certificate and its key for subject (the user is the
// common name, the groups the organizations), valid from an hour ago for two
// hours, for a TLS client.
func (ca *CA) ClientCert(t testing.TB, subject pkix.Name) *tls.Certificate {
	t.Helper()
	key := newKey(t)
	der := ca.sign(t, &key.PublicKey, subject, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *CA) sign(t testing.TB, pub any, subject pkix.Name, notBefore, notAfter time.Time) []byte {
	t.Helper()
	ca.mu.Lock()
	ca.serial++
	serial := big.NewInt(ca.serial)
	ca.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatalf("testpki: sign %s: %v", subject, err)
	}
	return der
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testpki: generate key: %v", err)
	}
	return key
}

func encode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
