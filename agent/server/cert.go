package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
)

// Names of the generated serving certificate and key in CertDir, the kubelet's.
const (
	certFileName = "kubelet.crt"
	keyFileName  = "kubelet.key"
)

const (
	certValidity = 365 * 24 * time.Hour
	certMinLeft  = 24 * time.Hour // a generated certificate closer to its end is replaced
	certBackdate = time.Hour      // tolerate clients whose clock is a little behind
)

// servingCertificate returns the configured certificate, or the self-signed one
// in CertDir, generating it when missing, unreadable, expiring or not naming
// the wanted host and IPs.
func servingCertificate(o Options, now time.Time) (tls.Certificate, error) {
	if o.TLSCertFile != "" || o.TLSKeyFile != "" {
		if o.TLSCertFile == "" || o.TLSKeyFile == "" {
			return tls.Certificate{}, errors.New("TLSCertFile and TLSKeyFile must be given together")
		}
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("serving certificate %s: %w", o.TLSCertFile, err)
		}
		return cert, nil
	}
	if o.CertDir == "" {
		return tls.Certificate{}, errors.New("CertDir is needed to generate a serving certificate (or give TLSCertFile and TLSKeyFile)")
	}
	host := o.Hostname
	if host == "" {
		h, err := os.Hostname()
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("serving certificate: hostname: %w", err)
		}
		host = h
	}
	ips := append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, o.NodeIPs...)
	certPath, keyPath := filepath.Join(o.CertDir, certFileName), filepath.Join(o.CertDir, keyFileName)
	if cert, ok := reusableCert(certPath, keyPath, host, ips, now); ok {
		return cert, nil
	}
	certPEM, keyPEM, err := generateSelfSigned(host, ips, now)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate: %w", err)
	}
	if err := os.MkdirAll(o.CertDir, 0o755); err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate: %w", err)
	}
	if err := atomicfile.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate key: %w", err)
	}
	if err := atomicfile.WriteFile(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate: %w", err)
	}
	o.Logger.Info("generated self-signed serving certificate", "cert", certPath, "host", host)
	return tls.X509KeyPair(certPEM, keyPEM)
}

// reusableCert loads an earlier generated pair if it is still good for host and ips.
func reusableCert(certPath, keyPath, host string, ips []net.IP, now time.Time) (tls.Certificate, bool) {
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, false
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, false
		}
	}
	if now.Before(leaf.NotBefore) || leaf.NotAfter.Sub(now) < certMinLeft {
		return tls.Certificate{}, false
	}
	if leaf.VerifyHostname(host) != nil {
		return tls.Certificate{}, false
	}
	for _, ip := range ips {
		if leaf.VerifyHostname(ip.String()) != nil {
			return tls.Certificate{}, false
		}
	}
	return cert, true
}

// generateSelfSigned makes an ECDSA P-256 key and a self-signed certificate
// for host, localhost and ips. It is its own CA, so a client can trust it
// directly (curl --cacert kubelet.crt).
func generateSelfSigned(host string, ips []net.IP, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s@%d", host, now.Unix())},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	if host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, "localhost")
	}
	tmpl.IPAddresses = append(tmpl.IPAddresses, ips...)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}
