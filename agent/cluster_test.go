package agent

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/nodekit-dev/nodekit/agent/nodestatus"
)

// TestClusterModeWiring: given a client, the agent registers its Node, holds
// its Lease, runs the pods bound to it beside its static pods and writes their
// statuses back (over client-go's fake clientset here; the control plane
// tests run it against a real API server).
func TestClusterModeWiring(t *testing.T) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "api-pod", UID: "api-uid-1"},
		Spec: v1.PodSpec{NodeName: "node1", RestartPolicy: v1.RestartPolicyAlways, DNSPolicy: v1.DNSDefault,
			Containers: []v1.Container{{Name: "app", Image: "busybox:latest", ImagePullPolicy: v1.PullIfNotPresent,
				TerminationMessagePolicy: v1.TerminationMessageReadFile}}},
		Status: v1.PodStatus{Phase: v1.PodPending},
	}
	client := fake.NewClientset(pod)
	f := startFakeAgent(t, func(o *Options) { o.KubeClient = client })
	f.write(t, "static.yaml", fakeManifest("static"))
	ctx := context.Background()

	deadline := time.Now().Add(time.Minute)
	for {
		node, nerr := client.CoreV1().Nodes().Get(ctx, "node1", metav1.GetOptions{})
		lease, lerr := client.CoordinationV1().Leases(nodestatus.LeaseNamespace).Get(ctx, "node1", metav1.GetOptions{})
		p, _ := client.CoreV1().Pods("default").Get(ctx, "api-pod", metav1.GetOptions{})
		if nerr == nil && lerr == nil && p.Status.Phase == v1.PodRunning && f.pod("static-node1") != nil && f.pod("static-node1").Status.Phase == v1.PodRunning {
			if node.Status.NodeInfo.KubeletVersion != Version || node.Status.Allocatable.Pods().IsZero() {
				t.Errorf("node status %+v", node.Status)
			}
			if *lease.Spec.HolderIdentity != "node1" {
				t.Errorf("lease %+v", lease.Spec)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %v lease %v pod phase %q static %v", nerr, lerr, p.Status.Phase, f.pod("static-node1"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(f.sandboxes("api-uid-1")) != 1 {
		t.Errorf("sandboxes of the API's pod: %d", len(f.sandboxes("api-uid-1")))
	}
}
