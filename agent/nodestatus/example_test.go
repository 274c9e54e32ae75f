package nodestatus_test

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/nodekit-dev/nodekit/agent/nodestatus"
)

// A node registered with its labels and status, then its status kept current
// (Run also renews its lease).
func Example() {
	client := fake.NewClientset() // a real API server: kubernetes.NewForConfig
	ready := v1.ConditionTrue
	m, err := nodestatus.New(nodestatus.Options{
		Client:   client,
		NodeName: "edge-1",
		Labels:   map[string]string{"site": "lab"},
		Node: func(context.Context) (*v1.Node, error) {
			n := &v1.Node{}
			n.Status.Capacity = v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}
			n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: ready, Reason: "KubeletReady"}}
			return n, nil
		},
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if _, err := m.Register(ctx); err != nil {
		panic(err)
	}
	ready = v1.ConditionFalse
	if err := m.UpdateStatus(ctx); err != nil {
		panic(err)
	}
	n, _ := client.CoreV1().Nodes().Get(ctx, "edge-1", metav1.GetOptions{})
	fmt.Println(n.Labels["site"], n.Status.Capacity.Cpu(), n.Status.Conditions[0].Status)
	// Output: lab 2 False
}
