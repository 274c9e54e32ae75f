package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// What kubeadm sets up for TLS bootstrap, under nodekit's names: bootstrap
// tokens (group system:bootstrappers) may request node client certificates,
// and have them approved by the controller manager's csrapproving
// controller; nodes have the renewals of their own certificates approved.
var bootstrapBindings = []struct{ name, role, group string }{
	{"nodekit:kubelet-bootstrap", "system:node-bootstrapper", "system:bootstrappers"},
	{"nodekit:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", "system:bootstrappers"},
	{"nodekit:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "system:nodes"},
}

// BootstrapKubeconfig writes a bootstrap kubeconfig, as kubeadm join gets: a
// new bootstrap token (a bootstrap-token-<id> Secret in kube-system, valid a
// day; the apiserver runs with --enable-bootstrap-token-auth), with the RBAC
// kubeadm sets up (the ClusterRoleBindings of bootstrapBindings). A node agent
// joining with it has its client certificate signed by the CA with no one
// approving by hand, and its renewals too. It returns the file's path.
func (cp *ControlPlane) BootstrapKubeconfig(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), kubectlTimeout)
	defer cancel()
	p, err := cp.WriteBootstrapKubeconfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteBootstrapKubeconfig is BootstrapKubeconfig for use outside a test.
func (cp *ControlPlane) WriteBootstrapKubeconfig(ctx context.Context) (string, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig)
	if err != nil {
		return "", fmt.Errorf("controlplane: admin kubeconfig: %w", err)
	}
	admin, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return "", fmt.Errorf("controlplane: admin client: %w", err)
	}
	for _, b := range bootstrapBindings {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: b.group}},
		}
		if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("controlplane: ClusterRoleBinding %s: %w", b.name, err)
		}
	}
	id, secret := tokenPart(6), tokenPart(16)
	s := &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: metav1.NamespaceSystem},
		Type:       "bootstrap.kubernetes.io/token",
		StringData: map[string]string{
			"description":                    "nodekit test bootstrap token",
			"token-id":                       id,
			"token-secret":                   secret,
			"expiration":                     time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
			"usage-bootstrap-authentication": "true",
		},
	}
	if _, err := admin.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("controlplane: bootstrap token: %w", err)
	}
	user := "kubelet-bootstrap"
	p := filepath.Join(cp.Dir, "bootstrap-"+id+".kubeconfig")
	data := fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: nodekit
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s.%s
contexts:
- name: nodekit
  context:
    cluster: nodekit
    user: %s
current-context: nodekit
`, cp.URL, base64.StdEncoding.EncodeToString(cp.CAPEM), user, id, secret, user)
	if err := writeFiles(map[string][]byte{p: data}); err != nil {
		return "", fmt.Errorf("controlplane: %w", err)
	}
	return p, nil
}

// tokenPart is n (at most 26) random characters of a bootstrap token, from
// [a-z2-7] (within the token's [a-z0-9]).
func tokenPart(n int) string { return strings.ToLower(rand.Text())[:n] }

// ExpiredNodeKubeconfig writes a kubeconfig for node nodeName, as
// NodeKubeconfig, whose certificate expired an hour ago, and returns its path.
func (cp *ControlPlane) ExpiredNodeKubeconfig(t testing.TB, nodeName string) string {
	t.Helper()
	p, err := cp.WriteExpiredNodeKubeconfig(nodeName)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteExpiredNodeKubeconfig is ExpiredNodeKubeconfig for use outside a test.
func (cp *ControlPlane) WriteExpiredNodeKubeconfig(nodeName string) (string, error) {
	if !nodeNameRE.MatchString(nodeName) {
		return "", fmt.Errorf("controlplane: %q is not a valid node name", nodeName)
	}
	user := "system:node:" + nodeName
	cert, key, err := cp.ca.issue(certSpec{cn: user, orgs: []string{"system:nodes"}, notAfter: time.Now().Add(-time.Hour)})
	if err != nil {
		return "", fmt.Errorf("controlplane: node certificate: %w", err)
	}
	p := filepath.Join(cp.Dir, "node-"+nodeName+"-expired.kubeconfig")
	if err := writeFiles(map[string][]byte{p: kubeconfig(cp.URL, cp.CAPEM, cert, key, user)}); err != nil {
		return "", fmt.Errorf("controlplane: %w", err)
	}
	return p, nil
}
