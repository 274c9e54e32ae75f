package clientcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	certificatesv1 "k8s.io/api/certificates/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/connrotation"
	"k8s.io/klog/v2"
)

// Options configure a Manager.
type Options struct {
	// Kubeconfig is the agent's kubeconfig (--kubeconfig): read by New, and
	// written by a bootstrap. Required.
	Kubeconfig string
	// BootstrapKubeconfig holds credentials allowed to request a client
	// certificate (--bootstrap-kubeconfig), used when Kubeconfig is missing,
	// unusable or its certificate expired.
	BootstrapKubeconfig string
	// CertDir is where certificates are kept (--cert-dir); required with
	// BootstrapKubeconfig or Rotate.
	CertDir string
	// NodeName is the node's name: the certificate is for
	// CN=system:node:<NodeName>, O=system:nodes. Required.
	NodeName string
	// Rotate renews the certificate before it expires (rotateCertificates).
	Rotate bool
	// Logger receives the log (default slog.Default()); client-go's
	// certificate manager logs there too.
	Logger *slog.Logger
	// NewClient makes the clients that request certificates (default
	// kubernetes.NewForConfig); tests pass a fake.
	NewClient func(*rest.Config) (kubernetes.Interface, error)
}

// Names in the cert dir, the kubelet's.
const (
	// pairPrefix names the pairs: kubelet-client-<time>.pem, and the
	// kubelet-client-current.pem symlink to the one in use.
	pairPrefix = "kubelet-client"
	// pendingKeyFile holds the key of a request not signed yet, so that a
	// restart asks again with the same key (and finds its request).
	pendingKeyFile = "kubelet-client.key.tmp"
)

// Manager holds the node's client certificate; see the package doc.
type Manager struct {
	o   Options
	log *slog.Logger
	// config is what Config copies: the kubeconfig's own (static), or the
	// dynamic transport presenting cert.
	config *rest.Config
	// static: the kubeconfig is used as it is (no bootstrap, no rotation, or
	// it authenticates without a certificate).
	static bool
	// bootstrap: Run must request the first certificate with bootstrapRC.
	bootstrap   bool
	bootstrapRC *rest.Config
	// The kubeconfig's own pair, for the rotation's store: its files, or its
	// data when embedded.
	kcCertFile, kcKeyFile string
	kcCertPEM, kcKeyPEM   []byte

	dialer    *connrotation.Dialer // nil when static
	cert      atomic.Pointer[tls.Certificate]
	ready     chan struct{}
	readyOnce sync.Once
	changed   chan struct{} // a new certificate is in use
}

// New reads the kubeconfig (and, when it cannot be used, the bootstrap
// kubeconfig) and returns a Manager whose Config is ready for clients; it
// makes no request. Its errors name the file and what is wrong with it.
func New(o Options) (*Manager, error) {
	if o.Kubeconfig == "" || o.NodeName == "" {
		return nil, errors.New("clientcert: Kubeconfig and NodeName are required")
	}
	if (o.BootstrapKubeconfig != "" || o.Rotate) && o.CertDir == "" {
		return nil, errors.New("clientcert: a bootstrap kubeconfig or rotation needs CertDir")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.NewClient == nil {
		o.NewClient = func(rc *rest.Config) (kubernetes.Interface, error) { return kubernetes.NewForConfig(rc) }
	}
	m := &Manager{o: o, log: o.Logger, ready: make(chan struct{}), changed: make(chan struct{}, 1)}

	kc, err := readKubeconfig(o.Kubeconfig)
	if err == nil && kc.pair == nil {
		// It authenticates otherwise (a token, a plugin).
		if o.BootstrapKubeconfig == "" {
			if o.Rotate {
				m.log.Info("the kubeconfig has no client certificate: nothing to rotate", "kubeconfig", o.Kubeconfig)
			}
			return m.useStatic(kc.rc, nil), nil
		}
		err = fmt.Errorf("kubeconfig %s has no client certificate", o.Kubeconfig)
	}
	if err == nil {
		if leaf := kc.pair.Leaf; time.Now().After(leaf.NotAfter) {
			err = &expiredError{file: o.Kubeconfig, leaf: leaf}
		}
	}
	var expired *expiredError
	if !o.Rotate && o.BootstrapKubeconfig == "" {
		switch {
		case errors.As(err, &expired):
			return nil, fmt.Errorf("clientcert: %w, and there is no bootstrap kubeconfig to request a new one", err)
		case err != nil:
			return nil, fmt.Errorf("clientcert: %w", err)
		}
		return m.useStatic(kc.rc, kc.pair), nil
	}

	var base *rest.Config
	var pair *tls.Certificate
	switch {
	case err == nil:
		base, pair = kc.rc, kc.pair
		if o.Rotate {
			// A newer pair in the cert dir (renewed since the kubeconfig
			// was written) wins, as in the kubelet's store.
			if c := m.currentPair(); c != nil {
				pair = c
			}
		}
	case o.BootstrapKubeconfig != "":
		bs, berr := readKubeconfig(o.BootstrapKubeconfig)
		if berr != nil {
			return nil, fmt.Errorf("clientcert: bootstrap %w (needed because %v)", berr, err)
		}
		m.log.Info("the kubeconfig cannot be used: a client certificate will be requested with the bootstrap kubeconfig",
			"reason", err.Error(), "bootstrapKubeconfig", o.BootstrapKubeconfig, "certDir", o.CertDir)
		base, m.bootstrap, m.bootstrapRC = bs.rc, true, bs.rc
	case kc != nil:
		// Expired, no bootstrap: a renewed pair in the cert dir may do.
		if pair = m.currentPair(); pair == nil {
			return nil, fmt.Errorf("clientcert: %w, and there is no bootstrap kubeconfig to request a new one", err)
		}
		base = kc.rc
	default:
		return nil, fmt.Errorf("clientcert: %w", err)
	}
	if kc != nil {
		m.kcCertFile, m.kcKeyFile = kc.rc.CertFile, kc.rc.KeyFile
		if kc.rc.CertFile == "" {
			m.kcCertPEM, m.kcKeyPEM = kc.rc.CertData, kc.rc.KeyData
		}
	}
	if m.config, err = m.dynamicConfig(base); err != nil {
		return nil, err
	}
	if pair != nil {
		m.use(pair)
	}
	return m, nil
}

// useStatic makes rc the clients' config as it is.
func (m *Manager) useStatic(rc *rest.Config, pair *tls.Certificate) *Manager {
	m.static, m.config = true, rc
	if pair != nil {
		m.cert.Store(pair)
	}
	m.readyOnce.Do(func() { close(m.ready) })
	return m
}

// Config returns a copy of the config for the agent's clients (set its
// UserAgent, QPS...); copies share one transport.
func (m *Manager) Config() *rest.Config { return rest.CopyConfig(m.config) }

// Ready is closed once there is a certificate to use (at once when the
// kubeconfig has one).
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// Current returns the certificate in use (nil before the first).
func (m *Manager) Current() *tls.Certificate { return m.cert.Load() }

// Run requests the first certificate when New found none to use (until one
// is signed or ctx ends), then, with rotation, renews it until ctx ends. It
// logs, as an error, a certificate that expired without being renewed. It
// returns an error only for what no retry mends (the cert dir unusable).
func (m *Manager) Run(ctx context.Context) error {
	// client-go's certificate manager and CSR helpers log through klog: into
	// the same log.
	kctx := klog.NewContext(ctx, logr.FromSlogHandler(m.log.Handler()))
	if m.bootstrap {
		if err := m.requestFirst(kctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	if m.o.Rotate && !m.static {
		rot, err := m.newRotation(kctx)
		if err != nil {
			return err
		}
		rot.Start()
		defer rot.Stop()
	}
	m.watchExpiry(ctx)
	return nil
}

// watchExpiry logs when the certificate in use expires before a new one
// replaced it, until ctx ends.
func (m *Manager) watchExpiry(ctx context.Context) {
	for {
		c := m.cert.Load()
		if c == nil {
			return
		}
		t := time.NewTimer(time.Until(c.Leaf.NotAfter))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.changed:
			t.Stop()
			continue
		case <-t.C:
		}
		if m.cert.Load() != c {
			continue
		}
		m.log.Error("the client certificate expired and no new one replaced it: the API server refuses the agent until one does",
			"subject", c.Leaf.Subject.String(), "serial", c.Leaf.SerialNumber.Text(16), "notAfter", c.Leaf.NotAfter,
			"rotate", m.o.Rotate, "bootstrapKubeconfig", m.o.BootstrapKubeconfig)
		select {
		case <-ctx.Done():
			return
		case <-m.changed:
		}
	}
}

// use makes c the certificate presented from now on; a change closes the
// connections made with the previous one, as the kubelet's transport does,
// so the next requests handshake again with c.
func (m *Manager) use(c *tls.Certificate) {
	old := m.cert.Swap(c)
	if old != nil && bytes.Equal(old.Certificate[0], c.Certificate[0]) {
		return
	}
	attrs := []any{"subject", c.Leaf.Subject.String(), "serial", c.Leaf.SerialNumber.Text(16),
		"notBefore", c.Leaf.NotBefore, "notAfter", c.Leaf.NotAfter}
	if old == nil {
		m.log.Info("client certificate in use", attrs...)
	} else {
		m.log.Info("client certificate renewed: closing the connections made with the previous one",
			append(attrs, "previousSerial", old.Leaf.SerialNumber.Text(16))...)
		if m.dialer != nil {
			m.dialer.CloseAll()
		}
	}
	m.readyOnce.Do(func() { close(m.ready) })
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// dynamicConfig is base's server and CA with a transport presenting the
// certificate in use, on connections closed when it changes.
func (m *Manager) dynamicConfig(base *rest.Config) (*rest.Config, error) {
	rc := rest.AnonymousClientConfig(base)
	tlsConf, err := rest.TLSConfigFor(rc)
	if err != nil {
		return nil, fmt.Errorf("clientcert: TLS to %s: %w", rc.Host, err)
	}
	if tlsConf == nil {
		return nil, fmt.Errorf("clientcert: server %s is not https: a client certificate needs TLS", rc.Host)
	}
	tlsConf.Certificates = nil
	tlsConf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if c := m.cert.Load(); c != nil {
			return c, nil
		}
		return &tls.Certificate{}, nil // none yet: the handshake goes on without one
	}
	dial := rc.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	m.dialer = connrotation.NewDialer(dial)
	rc.Transport = utilnet.SetTransportDefaults(&http.Transport{
		Proxy:               rc.Proxy,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig:     tlsConf,
		MaxIdleConnsPerHost: 25,
		DialContext:         m.dialer.DialContext,
	})
	rc.TLSClientConfig = rest.TLSClientConfig{}
	rc.Dial, rc.Proxy = nil, nil
	return rc, nil
}

// subject is what the node's certificates are for.
func (m *Manager) subject() pkix.Name {
	return pkix.Name{CommonName: "system:node:" + m.o.NodeName, Organization: []string{"system:nodes"}}
}

// usable says whether c is a certificate of this node, not expired.
func (m *Manager) usable(c *tls.Certificate) bool {
	return c != nil && c.Leaf != nil && time.Now().Before(c.Leaf.NotAfter) &&
		c.Leaf.Subject.CommonName == m.subject().CommonName
}

// currentPair returns the cert dir's current pair when it is usable.
func (m *Manager) currentPair() *tls.Certificate {
	s, err := m.store()
	if err != nil {
		return nil
	}
	c, err := s.Current()
	if err != nil || !m.usable(c) {
		return nil
	}
	return c
}

// store is the cert dir's kubelet-client pairs.
func (m *Manager) store() (certificate.FileStore, error) {
	s, err := certificate.NewFileStoreWithLogger(klog.Background().V(3), pairPrefix, m.o.CertDir, m.o.CertDir, "", "")
	if err != nil {
		return nil, fmt.Errorf("clientcert: cert dir %s: %w", m.o.CertDir, err)
	}
	return s, nil
}

// newRotation is client-go's certificate manager renewing the certificate
// into the cert dir (the kubelet's settings).
func (m *Manager) newRotation(ctx context.Context) (certificate.Manager, error) {
	fs, err := certificate.NewFileStoreWithLogger(klog.FromContext(ctx).V(3), pairPrefix, m.o.CertDir, m.o.CertDir, m.kcCertFile, m.kcKeyFile)
	if err != nil {
		return nil, fmt.Errorf("clientcert: cert dir %s: %w", m.o.CertDir, err)
	}
	subject := m.subject()
	rot, err := certificate.NewManager(&certificate.Config{
		Name:                    pairPrefix,
		ClientsetFn:             m.rotationClient,
		Template:                &x509.CertificateRequest{Subject: subject},
		SignerName:              certificatesv1.KubeAPIServerClientKubeletSignerName,
		GetUsages:               certificate.DefaultKubeletClientGetUsages,
		CertificateStore:        &inUseStore{FileStore: fs, m: m},
		BootstrapCertificatePEM: m.kcCertPEM,
		BootstrapKeyPEM:         m.kcKeyPEM,
		Ctx:                     &ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("clientcert: rotation: %w", err)
	}
	return rot, nil
}

// rotationClient is the client a renewal asks with: the current certificate,
// or the bootstrap credentials once it expired.
func (m *Manager) rotationClient(current *tls.Certificate) (kubernetes.Interface, error) {
	if current == nil && m.o.BootstrapKubeconfig != "" {
		rc := m.bootstrapRC
		if rc == nil {
			bs, err := readKubeconfig(m.o.BootstrapKubeconfig)
			if err != nil {
				return nil, fmt.Errorf("bootstrap %w", err)
			}
			rc = bs.rc
		}
		m.log.Info("no valid client certificate: requesting one with the bootstrap kubeconfig", "bootstrapKubeconfig", m.o.BootstrapKubeconfig)
		return m.o.NewClient(rest.CopyConfig(rc))
	}
	return m.o.NewClient(m.Config())
}

// inUseStore is the cert dir's store that makes every pair it stores the one
// in use.
type inUseStore struct {
	certificate.FileStore
	m *Manager
}

func (s *inUseStore) Update(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	c, err := s.FileStore.Update(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	s.m.use(c)
	return c, nil
}

// expiredError is a kubeconfig whose client certificate expired.
type expiredError struct {
	file string
	leaf *x509.Certificate
}

func (e *expiredError) Error() string {
	return fmt.Sprintf("kubeconfig %s: its client certificate (%s, serial %s) expired at %s",
		e.file, e.leaf.Subject.String(), e.leaf.SerialNumber.Text(16), e.leaf.NotAfter.UTC().Format(time.RFC3339))
}
