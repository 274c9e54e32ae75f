package clientcert

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfig is a kubeconfig file read.
type kubeconfig struct {
	rc *rest.Config
	// pair is its client certificate and key (nil when it authenticates
	// otherwise); pair.Leaf is set.
	pair *tls.Certificate
}

// readKubeconfig reads the kubeconfig at path and its client certificate, if
// it has one. Its errors name the file and say what is wrong.
func readKubeconfig(path string) (*kubeconfig, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("kubeconfig %s does not exist", path)
		}
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("kubeconfig %s: no cluster in it (want a current-context naming a cluster with a server)", path)
		}
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	kc := &kubeconfig{rc: rc}
	certPEM, keyPEM := rc.CertData, rc.KeyData
	if rc.CertFile != "" {
		if certPEM, err = os.ReadFile(rc.CertFile); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: client certificate: %w", path, err)
		}
	}
	if rc.KeyFile != "" {
		if keyPEM, err = os.ReadFile(rc.KeyFile); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: client key: %w", path, err)
		}
	}
	switch {
	case len(certPEM) == 0 && len(keyPEM) == 0:
		return kc, nil
	case len(keyPEM) == 0:
		return nil, fmt.Errorf("kubeconfig %s: a client certificate without its key", path)
	case len(certPEM) == 0:
		return nil, fmt.Errorf("kubeconfig %s: a client key without its certificate", path)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: client certificate: %w", path, err)
	}
	if pair.Leaf == nil {
		return nil, fmt.Errorf("kubeconfig %s: client certificate: no certificate", path)
	}
	kc.pair = &pair
	return kc, nil
}

// writeKubeconfig writes, atomically and private to its owner, a kubeconfig
// for cluster's server and CA whose client certificate and key are pemPath
// (one file holds both), as the kubelet's bootstrap does.
func writeKubeconfig(path string, cluster *rest.Config, pemPath string) error {
	c := &clientcmdapi.Cluster{
		Server:                cluster.Host,
		CertificateAuthority:  cluster.CAFile,
		InsecureSkipTLSVerify: cluster.Insecure,
		TLSServerName:         cluster.ServerName,
	}
	if cluster.CAFile == "" {
		c.CertificateAuthorityData = cluster.CAData
	}
	data, err := clientcmd.Write(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"default-cluster": c},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"default-auth": {ClientCertificate: pemPath, ClientKey: pemPath}},
		Contexts:       map[string]*clientcmdapi.Context{"default-context": {Cluster: "default-cluster", AuthInfo: "default-auth", Namespace: "default"}},
		CurrentContext: "default-context",
	})
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a failure; gone once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return nil
}
