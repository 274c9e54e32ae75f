package clientcert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodekit-dev/nodekit/internal/testpki"
)

// TestBootstrap: without a kubeconfig, Run requests a certificate with the
// bootstrap kubeconfig (the kubelet's request: signer, subject, usages, an
// ECDSA key, a node-csr- name), waits for its approval, then stores the pair
// and writes the kubeconfig, both private to their owner.
func TestBootstrap(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test-ca")
	api := newFakeAPI()
	log, logs := testLogger(t)
	kubeconfig := filepath.Join(dir, "kubelet.conf")
	certDir := filepath.Join(dir, "pki")
	m, err := New(Options{
		Kubeconfig:          kubeconfig,
		BootstrapKubeconfig: writeFile(t, dir, "bootstrap.conf", tokenKubeconfig(ca.PEM), 0o600),
		CertDir:             certDir,
		NodeName:            testNode,
		Logger:              log,
		NewClient:           api.newClient,
	})
	if err != nil {
		t.Fatal(err)
	}
	if isReady(m) || m.Current() != nil {
		t.Fatal("ready before any certificate")
	}
	if rc := m.Config(); rc.Host != testServer || rc.BearerToken != "" || rc.Transport == nil {
		t.Errorf("Config: host %q, token %q, transport %v; want the bootstrap server, no token, the dynamic transport", rc.Host, rc.BearerToken, rc.Transport)
	}
	runManager(t, m)

	req := api.waitCSR(t)
	if !strings.HasPrefix(req.Name, "node-csr-") || req.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName {
		t.Errorf("request %s for signer %s", req.Name, req.Spec.SignerName)
	}
	if want := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}; !slices.Equal(req.Spec.Usages, want) {
		t.Errorf("usages %v, want %v", req.Spec.Usages, want)
	}
	block, _ := pem.Decode(req.Spec.Request)
	cr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cr.Subject.CommonName != "system:node:"+testNode || !slices.Equal(cr.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject %s", cr.Subject)
	}
	if k, ok := cr.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", cr.PublicKey)
	}
	if api.configs[0].BearerToken != "abcdef.0123456789abcdef" {
		t.Errorf("the request was not made with the bootstrap credentials: %+v", api.configs[0])
	}
	poll(t, "the log to say what it waits for", func() bool {
		return strings.Contains(logs.String(), "waiting for the certificate signing request to be approved and signed") &&
			strings.Contains(logs.String(), "csr="+req.Name)
	})
	if isReady(m) {
		t.Fatal("ready before the request was approved")
	}
	if _, err := os.Stat(kubeconfig); err == nil {
		t.Fatal("kubeconfig written before the request was approved")
	}

	api.decide(t, req, ca, time.Hour, true)
	waitReady(t, m)
	cur := m.Current()
	if cur == nil || cur.Leaf.Subject.CommonName != "system:node:"+testNode || cur.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(cr.PublicKey) == false {
		t.Fatalf("current certificate %+v", cur)
	}

	// The pair: kubelet-client-<time>.pem behind kubelet-client-current.pem.
	current := filepath.Join(certDir, "kubelet-client-current.pem")
	target, err := os.Readlink(current)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(target), "kubelet-client-2") || filepath.Dir(target) != certDir {
		t.Errorf("current pair is %s", target)
	}
	pair, err := tls.LoadX509KeyPair(current, current)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Leaf.SerialNumber.Cmp(cur.Leaf.SerialNumber) != 0 {
		t.Errorf("stored serial %v, in use %v", pair.Leaf.SerialNumber, cur.Leaf.SerialNumber)
	}
	if _, err := os.Stat(filepath.Join(certDir, pendingKeyFile)); !os.IsNotExist(err) {
		t.Errorf("the pending key is left: %v", err)
	}
	// The kubeconfig: the bootstrap's cluster, the current pair.
	for _, f := range []string{target, kubeconfig} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", f, fi.Mode().Perm(), err)
		}
	}
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if c := cfg.Clusters[ctx.Cluster]; c.Server != testServer || string(c.CertificateAuthorityData) != string(ca.PEM) {
		t.Errorf("kubeconfig cluster %+v", c)
	}
	if u := cfg.AuthInfos[ctx.AuthInfo]; u.ClientCertificate != current || u.ClientKey != current || u.Token != "" {
		t.Errorf("kubeconfig user %+v", u)
	}

	// The next start uses what the bootstrap wrote, and asks for nothing.
	api2 := newFakeAPI()
	m2, err := New(Options{Kubeconfig: kubeconfig, BootstrapKubeconfig: filepath.Join(dir, "bootstrap.conf"), CertDir: certDir, NodeName: testNode, Logger: log, NewClient: api2.newClient})
	if err != nil {
		t.Fatal(err)
	}
	if !isReady(m2) || m2.Current().Leaf.SerialNumber.Cmp(cur.Leaf.SerialNumber) != 0 {
		t.Errorf("the second start does not use the bootstrapped certificate")
	}
	if len(api2.Actions()) != 0 || len(api2.configs) != 0 {
		t.Errorf("the second start asked the API server: %v", api2.Actions())
	}
}

// TestBootstrapDeniedThenAsked: a denied request is logged and asked again
// with back-off; once the denied request is deleted the next one is
// approved.
func TestBootstrapDeniedThenAsked(t *testing.T) {
	defer func(r, w time.Duration) { retryFirst, stillWaiting = r, w }(retryFirst, stillWaiting)
	// A request deleted between its lookup and the watch is not seen gone
	// until the wait is over: asked again soon.
	retryFirst, stillWaiting = 10*time.Millisecond, 200*time.Millisecond
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test-ca")
	api := newFakeAPI()
	log, logs := testLogger(t)
	m, err := New(Options{
		Kubeconfig:          filepath.Join(dir, "kubelet.conf"),
		BootstrapKubeconfig: writeFile(t, dir, "bootstrap.conf", tokenKubeconfig(ca.PEM), 0o600),
		CertDir:             filepath.Join(dir, "pki"),
		NodeName:            testNode,
		Logger:              log,
		NewClient:           api.newClient,
	})
	if err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	req := api.waitCSR(t)
	api.decide(t, req, ca, time.Hour, false)
	poll(t, "the denial in the log", func() bool {
		return strings.Contains(logs.String(), "requesting a client certificate failed; retrying") && strings.Contains(logs.String(), "denied by the test")
	})
	if isReady(m) {
		t.Fatal("ready after a denial")
	}
	if err := api.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), req.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var again *certificatesv1.CertificateSigningRequest
	poll(t, "the request made again", func() bool {
		r, err := api.CertificatesV1().CertificateSigningRequests().Get(context.Background(), req.Name, metav1.GetOptions{})
		again = r
		return err == nil
	})
	if string(again.Spec.Request) != string(req.Spec.Request) {
		t.Error("asked again with another key (the pending key should be kept until signed)")
	}
	api.decide(t, again, ca, time.Hour, true)
	waitReady(t, m)
}

// TestKubeconfigValid: a kubeconfig with a valid certificate is used as it
// is, bootstrap kubeconfig or not; nothing is asked.
func TestKubeconfigValid(t *testing.T) {
	ca := testpki.NewCA(t, "test-ca")
	for _, tc := range []struct {
		name   string
		opts   func(dir string, o *Options)
		static bool
	}{
		{"alone", func(string, *Options) {}, true},
		{"with a bootstrap kubeconfig", func(dir string, o *Options) {
			o.BootstrapKubeconfig = writeFile(t, dir, "bootstrap.conf", tokenKubeconfig(ca.PEM), 0o600)
			o.CertDir = filepath.Join(dir, "pki")
		}, false},
		{"with rotation", func(dir string, o *Options) { o.Rotate, o.CertDir = true, filepath.Join(dir, "pki") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			certPEM, keyPEM := ca.KeyPair(t, nodeSubject("system:node:"+testNode), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			api := newFakeAPI()
			log, _ := testLogger(t)
			o := Options{Kubeconfig: writeFile(t, dir, "kubelet.conf", certKubeconfig(ca.PEM, certPEM, keyPEM), 0o600), NodeName: testNode, Logger: log, NewClient: api.newClient}
			tc.opts(dir, &o)
			m, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			if !isReady(m) || m.Current() == nil || m.static != tc.static {
				t.Fatalf("ready %v, current %v, static %v", isReady(m), m.Current() != nil, m.static)
			}
			if m.bootstrap || len(api.configs) != 0 {
				t.Error("a valid kubeconfig is bootstrapped again")
			}
		})
	}
}

// TestRebootstrapExpired: an expired certificate in the kubeconfig is replaced
// through the bootstrap kubeconfig, and the kubeconfig rewritten private to
// its owner.
func TestRebootstrapExpired(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test-ca")
	api := newFakeAPI()
	log, logs := testLogger(t)
	certPEM, keyPEM := ca.KeyPair(t, nodeSubject("system:node:"+testNode), time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	kubeconfig := writeFile(t, dir, "kubelet.conf", certKubeconfig(ca.PEM, certPEM, keyPEM), 0o644)
	m, err := New(Options{
		Kubeconfig:          kubeconfig,
		BootstrapKubeconfig: writeFile(t, dir, "bootstrap.conf", tokenKubeconfig(ca.PEM), 0o600),
		CertDir:             filepath.Join(dir, "pki"),
		NodeName:            testNode,
		Logger:              log,
		NewClient:           api.newClient,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "expired at") {
		t.Errorf("the log does not say why it bootstraps:\n%s", logs.String())
	}
	runManager(t, m)
	api.decide(t, api.waitCSR(t), ca, time.Hour, true)
	waitReady(t, m)
	if fi, err := os.Stat(kubeconfig); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	kc, err := readKubeconfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if kc.pair.Leaf.SerialNumber.Cmp(m.Current().Leaf.SerialNumber) != 0 || !time.Now().Before(kc.pair.Leaf.NotAfter) {
		t.Errorf("the rewritten kubeconfig holds serial %v (until %v), in use %v", kc.pair.Leaf.SerialNumber, kc.pair.Leaf.NotAfter, m.Current().Leaf.SerialNumber)
	}
}

// TestBootstrapReusesCertDir: with the kubeconfig gone but a valid pair of
// the node in the cert dir, the bootstrap writes the kubeconfig for it and
// asks for nothing; a pair of another node is not used.
func TestBootstrapReusesCertDir(t *testing.T) {
	ca := testpki.NewCA(t, "test-ca")
	for _, tc := range []struct {
		cn    string
		reuse bool
	}{{"system:node:" + testNode, true}, {"system:node:other", false}} {
		t.Run(tc.cn, func(t *testing.T) {
			dir := t.TempDir()
			certDir := filepath.Join(dir, "pki")
			if err := os.MkdirAll(certDir, 0o700); err != nil {
				t.Fatal(err)
			}
			certPEM, keyPEM := ca.KeyPair(t, nodeSubject(tc.cn), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			pemFile := writeFile(t, certDir, "kubelet-client-2020-01-01-00-00-00.pem", append(certPEM, keyPEM...), 0o600)
			if err := os.Symlink(pemFile, filepath.Join(certDir, "kubelet-client-current.pem")); err != nil {
				t.Fatal(err)
			}
			api := newFakeAPI()
			log, _ := testLogger(t)
			m, err := New(Options{
				Kubeconfig:          filepath.Join(dir, "kubelet.conf"),
				BootstrapKubeconfig: writeFile(t, dir, "bootstrap.conf", tokenKubeconfig(ca.PEM), 0o600),
				CertDir:             certDir,
				NodeName:            testNode,
				Logger:              log,
				NewClient:           api.newClient,
			})
			if err != nil {
				t.Fatal(err)
			}
			runManager(t, m)
			if !tc.reuse {
				api.waitCSR(t)
				return
			}
			waitReady(t, m)
			if len(api.configs) != 0 {
				t.Error("asked for a certificate though the cert dir holds a valid one")
			}
			if _, err := readKubeconfig(filepath.Join(dir, "kubelet.conf")); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestBadFiles: what cannot be used is refused by New, naming the file and
// what is wrong with it.
func TestBadFiles(t *testing.T) {
	ca := testpki.NewCA(t, "test-ca")
	now := time.Now()
	valid, _ := ca.KeyPair(t, nodeSubject("system:node:"+testNode), now.Add(-time.Hour), now.Add(time.Hour))
	expiredAt := now.Add(-time.Hour).Truncate(time.Second)
	expired, expiredKey := ca.KeyPair(t, nodeSubject("system:node:"+testNode), now.Add(-2*time.Hour), expiredAt)
	_, otherKey := ca.KeyPair(t, nodeSubject("x"), now.Add(-time.Hour), now.Add(time.Hour))
	for _, tc := range []struct {
		name       string
		kubeconfig []byte // nil: no file
		bootstrap  []byte // nil: no bootstrap kubeconfig; "-": named but missing
		rotate     bool
		want       []string
	}{
		{name: "missing", want: []string{"kubeconfig DIR/kubelet.conf does not exist"}},
		{name: "not a kubeconfig", kubeconfig: []byte("{{{ not yaml"), want: []string{"kubeconfig DIR/kubelet.conf:", "error loading config file"}},
		{name: "empty", kubeconfig: []byte("apiVersion: v1\nkind: Config\n"), want: []string{"kubeconfig DIR/kubelet.conf: no cluster in it"}},
		{name: "certificate file missing", kubeconfig: []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {client-certificate: nope.crt, client-key: nope.key}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), want: []string{"kubeconfig DIR/kubelet.conf: ", "DIR/nope.crt: no such file"}},
		{name: "key of another certificate", kubeconfig: certKubeconfig(ca.PEM, valid, otherKey),
			want: []string{"kubeconfig DIR/kubelet.conf: client certificate: tls: private key does not match public key"}},
		{name: "expired", kubeconfig: certKubeconfig(ca.PEM, expired, expiredKey),
			want: []string{"kubeconfig DIR/kubelet.conf: its client certificate (CN=system:node:node-a,O=system:nodes, serial ", "expired at " + expiredAt.UTC().Format(time.RFC3339),
				"there is no bootstrap kubeconfig to request a new one"}},
		{name: "expired, rotation on", kubeconfig: certKubeconfig(ca.PEM, expired, expiredKey), rotate: true,
			want: []string{"expired at " + expiredAt.UTC().Format(time.RFC3339), "there is no bootstrap kubeconfig to request a new one"}},
		{name: "bootstrap kubeconfig missing", bootstrap: []byte("-"),
			want: []string{"bootstrap kubeconfig DIR/bootstrap.conf does not exist (needed because kubeconfig DIR/kubelet.conf does not exist)"}},
		{name: "bootstrap kubeconfig on plain http", bootstrap: []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"http://127.0.0.1:8080\"}}]\ncontexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n"),
			want: []string{"server http://127.0.0.1:8080 is not https"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Kubeconfig: filepath.Join(dir, "kubelet.conf"), NodeName: testNode, Rotate: tc.rotate, CertDir: filepath.Join(dir, "pki"), NewClient: newFakeAPI().newClient}
			o.Logger, _ = testLogger(t)
			if tc.kubeconfig != nil {
				writeFile(t, dir, "kubelet.conf", tc.kubeconfig, 0o600)
			}
			if tc.bootstrap != nil {
				o.BootstrapKubeconfig = filepath.Join(dir, "bootstrap.conf")
				if string(tc.bootstrap) != "-" {
					writeFile(t, dir, "bootstrap.conf", tc.bootstrap, 0o600)
				}
			}
			_, err := New(o)
			if err == nil {
				t.Fatal("New accepted it")
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "DIR", dir); !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
}

// TestTransportFollowsCertificate: the clients' transport presents the
// certificate in use, and a new one closes the connections made with the
// old one, so the next request presents the new one.
func TestTransportFollowsCertificate(t *testing.T) {
	ca := testpki.NewCA(t, "test-ca")
	var mu sync.Mutex
	var serials []string
	conns := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		serials = append(serials, r.TLS.PeerCertificates[0].SerialNumber.String())
		mu.Unlock()
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Success"}`) // the client checks what it gets
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			conns[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(conns, c)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	srvCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	dir := t.TempDir()
	certPEM, keyPEM := ca.KeyPair(t, nodeSubject("system:node:"+testNode), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	kc := strings.Replace(string(certKubeconfig(srvCA, certPEM, keyPEM)), testServer, srv.URL, 1)
	log, logs := testLogger(t)
	m, err := New(Options{Kubeconfig: writeFile(t, dir, "kubelet.conf", []byte(kc), 0o600), NodeName: testNode, Rotate: true, CertDir: filepath.Join(dir, "pki"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: m.Config().Transport}
	get := func() {
		t.Helper()
		resp, err := client.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	get()
	first := m.Current().Leaf.SerialNumber.String()

	next, nextKey := ca.KeyPair(t, nodeSubject("system:node:"+testNode), time.Now().Add(-time.Minute), time.Now().Add(2*time.Hour))
	pair, err := tls.X509KeyPair(next, nextKey)
	if err != nil {
		t.Fatal(err)
	}
	m.use(&pair)
	poll(t, "the old connection closed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(conns) == 0
	})
	get()
	mu.Lock()
	got := slices.Clone(serials)
	mu.Unlock()
	if want := []string{first, pair.Leaf.SerialNumber.String()}; !slices.Equal(got, want) {
		t.Errorf("the server saw serials %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), "client certificate renewed: closing the connections made with the previous one") {
		t.Errorf("the renewal is not in the log:\n%s", logs.String())
	}
}
