package clientcert

import (
	"context"
	"crypto"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/certificate/csr"
	"k8s.io/client-go/util/keyutil"
)

// Retries of a request that failed (the server unreachable, the request
// refused or denied): doubling from the first to the last delay.
var (
	retryFirst = time.Second
	retryMax   = 30 * time.Second
)

// stillWaiting is how often the log says a request still waits for approval.
var stillWaiting = time.Minute

// requestFirst gets the first certificate: the cert dir's current one if it is
// still good, else one requested with the bootstrap credentials; then writes
// the kubeconfig pointing at it. It retries until it succeeds or ctx ends.
func (m *Manager) requestFirst(ctx context.Context) error {
	store, err := m.store()
	if err != nil {
		return err
	}
	if c, err := store.Current(); err == nil && m.usable(c) {
		m.log.Info("the cert dir holds a valid client certificate: using it instead of requesting one", "file", store.CurrentPath())
		if err := writeKubeconfig(m.o.Kubeconfig, m.bootstrapRC, store.CurrentPath()); err != nil {
			return fmt.Errorf("clientcert: %w", err)
		}
		m.use(c)
		return nil
	}
	// The key waits in its own file until the certificate is signed: a
	// restart meanwhile asks with it again, under the same request name.
	keyFile := filepath.Join(m.o.CertDir, pendingKeyFile)
	keyPEM, _, err := keyutil.LoadOrGenerateKeyFile(keyFile)
	if err != nil {
		return fmt.Errorf("clientcert: key %s: %w", keyFile, err)
	}
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return fmt.Errorf("clientcert: key %s: %w", keyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("clientcert: key %s: %T cannot sign", keyFile, key)
	}
	subject := m.subject()
	csrPEM, err := certutil.MakeCSR(key, &subject, nil, nil)
	if err != nil {
		return fmt.Errorf("clientcert: certificate request: %w", err)
	}
	usages := certificate.DefaultKubeletClientGetUsages(key)
	name, err := requestName(signer.Public(), subject, usages)
	if err != nil {
		return fmt.Errorf("clientcert: certificate request: %w", err)
	}
	client, err := m.o.NewClient(rest.CopyConfig(m.bootstrapRC))
	if err != nil {
		return fmt.Errorf("clientcert: bootstrap client: %w", err)
	}
	certPEM, err := m.request(ctx, client, name, csrPEM, key, usages)
	if err != nil {
		return err // ctx ended
	}
	c, err := store.Update(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("clientcert: storing the certificate in %s: %w", m.o.CertDir, err)
	}
	if err := os.Remove(keyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("removing the key of the signed request", "file", keyFile, "err", err)
	}
	if err := writeKubeconfig(m.o.Kubeconfig, m.bootstrapRC, store.CurrentPath()); err != nil {
		return fmt.Errorf("clientcert: %w", err)
	}
	m.log.Info("client certificate bootstrapped", "file", store.CurrentPath(), "kubeconfig", m.o.Kubeconfig)
	m.use(c)
	return nil
}

// request creates the certificate signing request name (or finds it, made
// by an earlier run) and waits until it is approved and signed, retrying
// with back-off what fails, until ctx ends. It returns the certificate.
func (m *Manager) request(ctx context.Context, client kubernetes.Interface, name string, csrPEM []byte, key any, usages []certificatesv1.KeyUsage) ([]byte, error) {
	delay := retryFirst
	start := time.Now()
	var waitingFor types.UID // the request the log said it waits for
	for {
		certPEM, err := m.requestOnce(ctx, client, name, csrPEM, key, usages, &waitingFor)
		switch {
		case err == nil:
			m.log.Info("certificate signing request signed", "csr", name, "waited", time.Since(start).Round(time.Millisecond))
			return certPEM, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, errStillWaiting):
			// Asked again: a request deleted meanwhile is made anew.
			m.log.Info("still waiting for the certificate signing request to be approved and signed",
				"csr", name, "waited", time.Since(start).Round(time.Second))
			delay = retryFirst
			continue
		}
		m.log.Warn("requesting a client certificate failed; retrying", "csr", name, "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, retryMax)
	}
}

// requestOnce creates the request (or finds it) and waits for its
// certificate, stillWaiting at most (errStillWaiting). The log says once
// which request it waits for (waitingFor is the last one it named).
func (m *Manager) requestOnce(ctx context.Context, client kubernetes.Interface, name string, csrPEM []byte, key any, usages []certificatesv1.KeyUsage, waitingFor *types.UID) ([]byte, error) {
	signer := certificatesv1.KubeAPIServerClientKubeletSignerName
	reqName, uid, err := csr.RequestCertificateWithContext(ctx, client, csrPEM, name, signer, nil, usages, key)
	if err != nil {
		return nil, err
	}
	if uid != *waitingFor || uid == "" {
		m.log.Info("waiting for the certificate signing request to be approved and signed",
			"csr", reqName, "signer", signer, "subject", m.subject().String())
		*waitingFor = uid
	}
	wctx, cancel := context.WithTimeout(ctx, stillWaiting)
	defer cancel()
	certPEM, err := csr.WaitForCertificate(wctx, client, reqName, uid)
	switch {
	case err == nil:
		return certPEM, nil
	case ctx.Err() == nil && wctx.Err() != nil:
		return nil, errStillWaiting
	}
	return nil, fmt.Errorf("certificate signing request %s: %w", reqName, err)
}

var errStillWaiting = errors.New("still waiting")

// requestName names a request after what it asks for — the key, the subject
// and the usages — as node-csr-<digest>, the kubelet's names: asking again
// with the same key finds the same request.
func requestName(pub crypto.PublicKey, subject pkix.Name, usages []certificatesv1.KeyUsage) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	parts := [][]byte{der, []byte(subject.CommonName)}
	for _, o := range subject.Organization {
		parts = append(parts, []byte(o))
	}
	for _, u := range usages {
		parts = append(parts, []byte(u))
	}
	// Each part base64-encoded and ended by a character base64 never
	// uses: no two lists of parts hash the same stream.
	h := sha512.New512_256()
	for _, p := range parts {
		h.Write([]byte(base64.RawURLEncoding.EncodeToString(p)))
		h.Write([]byte{'|'})
	}
	return "node-csr-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)), nil
}
