package agent

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

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
	pod.Spec.Volumes = []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: "web"}}}}}
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Data: map[string]string{"index.html": "from the API"}}
	client := fake.NewClientset(pod, cm)
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
	// The static pod's mirror in the API, owned by the Node, with its status.
	var mirror *v1.Pod
	deadline = time.Now().Add(time.Minute)
	for {
		mirror, _ = client.CoreV1().Pods("default").Get(ctx, "static-node1", metav1.GetOptions{})
		if mirror != nil && mirror.Status.Phase == v1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running mirror pod: %+v", mirror)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if mirror.Annotations["kubernetes.io/config.mirror"] == "" || len(mirror.OwnerReferences) != 1 || mirror.OwnerReferences[0].Kind != "Node" {
		t.Errorf("mirror pod %+v", mirror.ObjectMeta)
	}

	// Its configMap volume from the API, kept current.
	file := filepath.Join(f.cfg.RootDir, "pods", "api-uid-1", "volumes", "kubernetes.io~configmap", "cfg", "index.html")
	if b, err := os.ReadFile(file); err != nil || string(b) != "from the API" {
		t.Fatalf("configMap volume: %q %v", b, err)
	}
	cm.Data["index.html"] = "updated"
	if _, err := client.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(time.Minute)
	for b, _ := os.ReadFile(file); string(b) != "updated"; b, _ = os.ReadFile(file) {
		if time.Now().After(deadline) {
			t.Fatalf("the configMap update did not reach the volume: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The kubelet's events, from source "kubelet" on this host: the pod's
	// container created and started, the node starting and Ready.
	want := map[string]bool{"Pod/api-pod spec.containers{app} Created": false, "Pod/api-pod spec.containers{app} Started": false,
		"Node/node1  Starting": false, "Node/node1  NodeReady": false}
	deadline = time.Now().Add(time.Minute)
	for {
		evs, err := client.CoreV1().Events("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs.Items {
			key := e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name + " " + e.InvolvedObject.FieldPath + " " + e.Reason
			if _, ok := want[key]; ok && e.Source.Component == "kubelet" && e.Source.Host == "node1" {
				want[key] = true
			}
		}
		if !slices.Contains(slices.Collect(maps.Values(want)), false) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events seen of those wanted: %v", want)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The static pod goes: so does its mirror.
	if err := os.Remove(filepath.Join(f.manifests, "static.yaml")); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(time.Minute)
	for {
		if _, err := client.CoreV1().Pods("default").Get(ctx, "static-node1", metav1.GetOptions{}); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the mirror pod outlived its static pod")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterModeDeletion: a pod deleted in the API (deletionTimestamp set)
// is stopped, and its deletion finished with no grace left and its UID as a
// precondition once its containers are gone.
func TestClusterModeDeletion(t *testing.T) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "doomed", UID: "api-uid-2"},
		Spec: v1.PodSpec{NodeName: "node1", RestartPolicy: v1.RestartPolicyAlways, DNSPolicy: v1.DNSDefault,
			Containers: []v1.Container{{Name: "app", Image: "busybox:latest", ImagePullPolicy: v1.PullIfNotPresent,
				TerminationMessagePolicy: v1.TerminationMessageReadFile}}},
	}
	client := fake.NewClientset(pod)
	f := startFakeAgent(t, func(o *Options) { o.KubeClient = client })
	ctx := context.Background()
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	poll("the pod running", func() bool { return len(f.containers("api-uid-2")) == 1 })

	// What the API server does on a graceful delete: deletionTimestamp and
	// deletionGracePeriodSeconds set, the object kept.
	cur, _ := client.CoreV1().Pods("default").Get(ctx, "doomed", metav1.GetOptions{})
	now := metav1.Now()
	grace := int64(3)
	cur.DeletionTimestamp, cur.DeletionGracePeriodSeconds = &now, &grace
	if _, err := client.CoreV1().Pods("default").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("the deletion finished", func() bool {
		_, err := client.CoreV1().Pods("default").Get(ctx, "doomed", metav1.GetOptions{})
		return err != nil
	})
	if n := len(f.sandboxes("api-uid-2")); n != 0 {
		t.Errorf("%d sandboxes left when the deletion was finished", n)
	}
	var del *k8stesting.DeleteActionImpl
	for _, a := range client.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok && d.GetResource().Resource == "pods" {
			del = &d
		}
	}
	if del == nil || del.DeleteOptions.GracePeriodSeconds == nil || *del.DeleteOptions.GracePeriodSeconds != 0 ||
		del.DeleteOptions.Preconditions == nil || *del.DeleteOptions.Preconditions.UID != "api-uid-2" {
		t.Errorf("delete %+v: want grace 0 with the UID as a precondition", del)
	}
}
