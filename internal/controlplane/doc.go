// Package controlplane starts a real Kubernetes control plane, for a test
// (Start) or for a program such as `make run-cluster` (New, Close):
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler, built by
// `make controlplane` (examples/controlplane/build.sh) at the Kubernetes
// version of go.mod's k8s.io/api, and reached with the kubectl built beside
// them.
//
// The apiserver authorizes with Node,RBAC and admits with NodeRestriction, so a
// node identity (NodeKubeconfig: CN=system:node:NAME, O=system:nodes) gets
// exactly what a kubelet gets in a real cluster. The controller manager runs
// every default controller with service-account credentials and signs CSRs with
// the test's CA (for Options.ClusterSigningDuration); the scheduler places pods
// on Ready nodes. BootstrapKubeconfig gives a bootstrap token, as kubeadm join
// gets, with kubeadm's RBAC: a node agent's CSR for its client certificate, and
// the renewals it asks with that certificate, are approved by the controller
// manager. Everything listens
// on 127.0.0.1 on free ports, and each control plane has its own directory
// (certificates, kubeconfigs, etcd data), so tests can run several at once.
//
// Start finds the binaries in Options.Dir/bin, else $NODEKIT_CONTROLPLANE_DIR/bin,
// else /var/cache/nodekit/controlplane/<version>/bin. Without them, or without
// root, the test skips saying why (a failure under NODEKIT_REQUIRE_INTEGRATION=1,
// see internal/testenv). The test's cleanup stops every process Start started
// (SIGTERM, then SIGKILL after a bounded wait), removes the directory, and
// prints each component's log when the test failed. Ports are picked free and
// then handed to the components, so another process may take one meanwhile:
// a start that loses a port is retried with new ones.
package controlplane
