package nodestatus

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

// view is a node as the agent sees it, with a settable Ready status.
type view struct {
	mu    sync.Mutex
	ready v1.ConditionStatus
	pods  string
}

func (v *view) node(context.Context) (*v1.Node, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{v1.LabelHostname: "n1"}}}
	n.Status.Capacity = v1.ResourceList{v1.ResourcePods: resource.MustParse(v.pods), v1.ResourceCPU: resource.MustParse("2")}
	n.Status.Allocatable = n.Status.Capacity
	n.Status.Conditions = []v1.NodeCondition{
		{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientMemory"},
		{Type: v1.NodeReady, Status: v.ready, Reason: "KubeletReady"},
	}
	n.Status.NodeInfo.KubeletVersion = "v1.37.2-nodekit"
	return n, nil
}

func (v *view) set(ready v1.ConditionStatus) {
	v.mu.Lock()
	v.ready = ready
	v.mu.Unlock()
}

func newTest(t *testing.T) (*Manager, *fake.Clientset, *clocktesting.FakeClock, *view) {
	t.Helper()
	client := fake.NewClientset()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	v := &view{ready: v1.ConditionTrue, pods: "110"}
	m, err := New(Options{
		Client: client, NodeName: "n1", Node: v.node, Clock: clk,
		Labels: map[string]string{"role": "edge"},
		Taints: []v1.Taint{{Key: "dedicated", Value: "edge", Effect: v1.TaintEffectNoSchedule}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, client, clk, v
}

func patches(client *fake.Clientset) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == "patch" && a.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func TestRegister(t *testing.T) {
	m, client, _, _ := newTest(t)
	ctx := context.Background()
	n, err := m.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels["role"] != "edge" || n.Labels[v1.LabelHostname] != "n1" {
		t.Errorf("labels %v", n.Labels)
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != "dedicated" {
		t.Errorf("taints %v", n.Spec.Taints)
	}
	if n.Status.NodeInfo.KubeletVersion != "v1.37.2-nodekit" || n.Status.Allocatable.Cpu().String() != "2" {
		t.Errorf("status %+v", n.Status)
	}
	// Registering again (an agent restart) reconciles the agent's labels and
	// keeps what others set.
	existing, _ := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	existing.Labels["role"] = "changed"
	existing.Labels["team"] = "ops"
	if _, err := client.CoreV1().Nodes().Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err = m.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels["role"] != "edge" || n.Labels["team"] != "ops" {
		t.Errorf("labels after re-registration %v", n.Labels)
	}
}

func TestUpdateStatus(t *testing.T) {
	m, client, clk, v := newTest(t)
	ctx := context.Background()
	if _, err := m.Register(ctx); err != nil {
		t.Fatal(err)
	}
	registered := clk.Now()
	if err := m.UpdateStatus(ctx); err != nil {
		t.Fatal(err)
	}
	first := patches(client)
	if first != 1 {
		t.Fatalf("%d status patches after the first update, want 1 (nothing reported yet)", first)
	}
	// Unchanged within the report period: no patch.
	clk.Step(10 * time.Second)
	if err := m.UpdateStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if patches(client) != first {
		t.Errorf("an unchanged status was patched")
	}
	// A condition changes: patched, with a new transition time; the other
	// condition keeps its transition time.
	clk.Step(10 * time.Second)
	v.set(v1.ConditionFalse)
	if err := m.UpdateStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if patches(client) != first+1 {
		t.Fatalf("a changed condition was not patched")
	}
	n, _ := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	for _, c := range n.Status.Conditions {
		switch c.Type {
		case v1.NodeReady:
			if c.Status != v1.ConditionFalse || !c.LastTransitionTime.Time.Equal(clk.Now()) {
				t.Errorf("Ready %+v: want False since now", c)
			}
		case v1.NodeMemoryPressure:
			if !c.LastTransitionTime.Time.Equal(registered) || !c.LastHeartbeatTime.Time.Equal(clk.Now()) {
				t.Errorf("MemoryPressure %+v: want its transition kept (%v), its heartbeat now", c, registered)
			}
		}
	}
	// The report period passes: patched though nothing changed (heartbeat).
	clk.Step(DefaultReportFrequency)
	if err := m.UpdateStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if patches(client) != first+2 {
		t.Errorf("no heartbeat patch after the report period")
	}
	// Capacity changes are status changes too.
	clk.Step(10 * time.Second)
	v.mu.Lock()
	v.pods = "50"
	v.mu.Unlock()
	if err := m.UpdateStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if patches(client) != first+3 {
		t.Errorf("a capacity change was not patched")
	}
}

// TestRunRenewsTheLease: Run registers the node and keeps a Lease named after
// it in kube-node-lease, held by the node and owned by its Node, renewed every
// quarter of its duration (the renewals run on real time: a 4 s lease here).
func TestRunRenewsTheLease(t *testing.T) {
	m, client, _, _ := newTest(t)
	m.o.LeaseDuration = 4 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	renewals := func() int {
		n := 0
		for _, a := range client.Actions() {
			if a.GetResource().Resource == "leases" && a.GetVerb() == "update" {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for renewals() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the lease was renewed %d times in 30 s", renewals())
		}
		time.Sleep(50 * time.Millisecond)
	}
	l, err := client.CoordinationV1().Leases(LeaseNamespace).Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *l.Spec.HolderIdentity != "n1" || *l.Spec.LeaseDurationSeconds != 4 || len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "Node" {
		t.Errorf("lease %+v owners %v", l.Spec, l.OwnerReferences)
	}
}

type nodeEvents struct{ got []string }

func (e *nodeEvents) Eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	ref := obj.(*v1.ObjectReference)
	e.got = append(e.got, ref.Kind+"/"+ref.Name+" "+eventtype+" "+reason+": "+fmt.Sprintf(format, args...))
}

// TestConditionEvents: the first report gives one event per condition, later
// ones only for a condition whose status changed.
func TestConditionEvents(t *testing.T) {
	m, _, clk, v := newTest(t)
	rec := &nodeEvents{}
	m.o.Recorder = rec
	ctx := context.Background()
	if _, err := m.Register(ctx); err != nil {
		t.Fatal(err)
	}
	step := func(ready v1.ConditionStatus, want ...string) {
		t.Helper()
		v.set(ready)
		rec.got = nil
		clk.Step(m.o.ReportFrequency)
		if err := m.UpdateStatus(ctx); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rec.got, want) {
			t.Errorf("events %q, want %q", rec.got, want)
		}
	}
	step(v1.ConditionTrue,
		"Node/n1 Normal NodeHasSufficientMemory: Node n1 status is now: NodeHasSufficientMemory",
		"Node/n1 Normal NodeReady: Node n1 status is now: NodeReady")
	step(v1.ConditionTrue)
	step(v1.ConditionFalse, "Node/n1 Normal NodeNotReady: Node n1 status is now: NodeNotReady")
	step(v1.ConditionTrue, "Node/n1 Normal NodeReady: Node n1 status is now: NodeReady")
}

// TestRunReadsTheWatchedNode: once Run watches its Node, status updates read
// it from the watch, not with a GET each (the kubelet's node lister): a GET
// every 10 s was half of an idle node's requests.
func TestRunReadsTheWatchedNode(t *testing.T) {
	m, client, clk, _ := newTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	count := func(verb, sub string) int {
		n := 0
		for _, a := range client.Actions() {
			if a.GetResource().Resource == "nodes" && a.GetVerb() == verb && a.GetSubresource() == sub {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for want := 1; want <= 4; want++ {
		for count("patch", "status") < want || count("watch", "") == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d status patches, %d watches of the node", count("patch", "status"), count("watch", ""))
			}
			time.Sleep(5 * time.Millisecond) // polling the goroutine's progress
		}
		clk.Step(m.o.ReportFrequency) // the next update reports again
	}
	if gets := count("get", ""); gets > 2 {
		t.Errorf("%d GETs of the node for 4 status updates: want the watched node read (at most the registration's and the first update's)", gets)
	}
}
