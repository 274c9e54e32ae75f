package clientcert_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"

	"github.com/nodekit-dev/nodekit/agent/clientcert"
)

// An agent joining with a bootstrap kubeconfig only: New reads the files and
// makes no request, the agent's clients are made at once on Config, Run
// requests the certificate (and renews it), and Ready says when the clients
// can be used.
func Example() {
	dir, err := os.MkdirTemp("", "clientcert")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	bootstrap := filepath.Join(dir, "bootstrap-kubelet.conf")
	err = os.WriteFile(bootstrap, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: bootstrap, user: {token: abcdef.0123456789abcdef}}]
contexts: [{name: c, context: {cluster: c, user: bootstrap}}]
current-context: c
`), 0o600)
	if err != nil {
		fmt.Println(err)
		return
	}

	m, err := clientcert.New(clientcert.Options{
		Kubeconfig:          filepath.Join(dir, "kubelet.conf"), // written once the certificate is signed
		BootstrapKubeconfig: bootstrap,
		CertDir:             filepath.Join(dir, "pki"),
		NodeName:            "node-a",
		Rotate:              true,
		Logger:              slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rc := m.Config()
	rc.UserAgent = "example-agent"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = client // the agent's client: it presents whichever certificate is current

	// An agent runs m.Run(ctx) beside its pods, and what talks to the API
	// server once <-m.Ready(); here nothing is asked.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fmt.Println("Run:", m.Run(ctx))
	select {
	case <-m.Ready():
		fmt.Println("certificate: ready")
	default:
		fmt.Println("certificate: to be requested from", rc.Host)
	}
	// Output:
	// Run: <nil>
	// certificate: to be requested from https://127.0.0.1:6443
}
