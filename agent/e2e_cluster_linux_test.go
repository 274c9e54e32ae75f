package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodekit-dev/nodekit/internal/controlplane"
)

// TestE2EClusterNode: the agent joins a real control plane (kube-apiserver,
// etcd, controller-manager and scheduler built from the module proxy, the Node
// and RBAC authorizers, NodeRestriction) with node credentials only, on the
// real shim. Its Node becomes Ready with the agent's capacity and its Lease is
// held; a pod created through the API — scheduled there by the scheduler, with
// the service-account token volume the API server adds, a configMap volume and
// env from a secret — runs and its status reaches the API; a configMap edit
// reaches the running container; a static pod gets a mirror pod; a graceful
// delete stops the pod and the agent finishes it.
func TestE2EClusterNode(t *testing.T) {
	t.Parallel()
	cp := controlplane.Start(t, controlplane.Options{})
	h := newHarness(t, harnessOptions{kubeconfig: cp.NodeKubeconfig(t, nodeName)})
	rc, err := clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	apiWait := func(what string, cond func() bool) {
		t.Helper()
		waitFor(t, what, 2*time.Minute, cond)
	}

	var node *v1.Node
	apiWait("the node Ready in the API", func() bool {
		node, err = admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range node.Status.Conditions {
			if c.Type == v1.NodeReady && c.Status == v1.ConditionTrue {
				return true
			}
		}
		return false
	})
	if node.Status.NodeInfo.ContainerRuntimeVersion == "" || node.Status.Allocatable.Pods().IsZero() || len(node.Status.Addresses) == 0 {
		t.Errorf("node status %+v", node.Status)
	}
	// The lease is renewed by its own loop, started with the status loop: the
	// node may be Ready in the API before the first lease is written.
	apiWait("the node's lease in kube-node-lease", func() bool {
		l, err := admin.CoordinationV1().Leases("kube-node-lease").Get(ctx, nodeName, metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == nodeName
	})

	// A configMap, a secret and a pod using both, scheduled by the scheduler.
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Data: map[string]string{"index.html": "v1"}}
	if _, err := admin.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sec := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default"}, StringData: map[string]string{"user": "admin"}}
	if _, err := admin.CoreV1().Secrets("default").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	grace := int64(5)
	app := shell("app", `trap 'exit 0' TERM; `+idle)
	app.VolumeMounts = []v1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	app.Env = []v1.EnvVar{{Name: "USER_NAME", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{
		LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Key: "user"}}}}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: v1.PodSpec{
		Containers:                    []v1.Container{app},
		TerminationGracePeriodSeconds: &grace,
		Volumes: []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "web"}}}}},
	}}
	if _, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var api *v1.Pod
	apiWait("the pod Running and Ready in the API", func() bool {
		api, err = admin.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && api.Status.Phase == v1.PodRunning && podReady(api)
	})
	if api.Spec.NodeName != nodeName || api.Status.PodIP == "" || len(api.Status.ContainerStatuses) != 1 {
		t.Errorf("pod in the API: node %q, status %+v", api.Spec.NodeName, api.Status)
	}
	sh := func(script string) string {
		out, _ := h.exec(api, "app", "sh", "-c", script)
		return strings.TrimSpace(out)
	}
	if got := sh("cat /cfg/index.html; echo; echo $USER_NAME; test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token"); got != "v1\nadmin\ntoken" {
		t.Errorf("in the container: %q (configMap, secret env, service-account token)", got)
	}
	cm.Data["index.html"] = "v2"
	if _, err := admin.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	apiWait("the configMap edit in the container", func() bool { return sh("cat /cfg/index.html") == "v2" })

	// A static pod: its mirror in the API, Running.
	h.writeManifest(h.testPod("static", shell("main", `trap 'exit 0' TERM; `+idle)))
	var mirror *v1.Pod
	apiWait("the static pod's mirror Running in the API", func() bool {
		mirror, err = admin.CoreV1().Pods("default").Get(ctx, "static-"+nodeName, metav1.GetOptions{})
		return err == nil && mirror.Annotations["kubernetes.io/config.mirror"] != "" && mirror.Status.Phase == v1.PodRunning
	})
	// A user deletes the mirror: the static pod runs on, a new mirror
	// stands for it.
	if err := admin.CoreV1().Pods("default").Delete(ctx, mirror.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	apiWait("a new mirror after the old one was deleted", func() bool {
		m, err := admin.CoreV1().Pods("default").Get(ctx, "static-"+nodeName, metav1.GetOptions{})
		return err == nil && m.UID != mirror.UID && m.DeletionTimestamp == nil && m.Status.Phase == v1.PodRunning
	})
	if p := h.pod("static-" + nodeName); p == nil || p.Status.ContainerStatuses[0].RestartCount != 0 || p.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("the static pod after its mirror's deletion: %+v", p)
	}

	// Node credentials only: a static pod cannot use the API's secrets (no
	// pod bound to the node references them; NodeRestriction refuses a mirror
	// pod that would): the Node authorizer's refusal reaches the container's
	// status and the agent's log, naming the secret and the node's identity.
	leaky := shell("main", idle)
	leaky.Env = []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{
		LocalObjectReference: v1.LocalObjectReference{Name: "unreferenced"}, Key: "k"}}}}
	unref := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unreferenced", Namespace: "default"}, StringData: map[string]string{"k": "v"}}
	if _, err := admin.CoreV1().Secrets("default").Create(ctx, unref, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.writeManifest(h.testPod("leaky", leaky))
	forbidden := `secrets "unreferenced" is forbidden: User "system:node:` + nodeName + `" cannot list resource "secrets"`
	waitFor(t, "the refused secret in the static pod's status", 2*time.Minute, func() bool {
		p := h.pod("leaky-" + nodeName)
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, forbidden)
	})
	if !strings.Contains(strings.ReplaceAll(h.logs.String(), `\"`, `"`), forbidden) { // the log quotes its values
		t.Errorf("the agent's log does not say the API server refused the secret (%q)", forbidden)
	}
	// Nor can the node touch another node's lease or read the secret itself.
	nodeKubeconfig := cp.NodeKubeconfig(t, nodeName)
	for _, args := range [][]string{
		{"annotate", "lease", "other-node", "-n", "kube-node-lease", "x=y"},
		{"get", "secret", "unreferenced"},
	} {
		if out, err := cp.KubectlAs(t, nodeKubeconfig, args...); err == nil || !strings.Contains(err.Error(), "forbidden") {
			t.Errorf("kubectl %v as the node: %q %v, want forbidden", args, out, err)
		}
	}
	h.removeManifest("leaky")

	// A pod bound to the node that cannot fit: Failed with the kubelet's reason.
	big := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "too-big", Namespace: "default"}, Spec: v1.PodSpec{
		NodeName:   nodeName,
		Containers: []v1.Container{{Name: "c", Image: busybox, Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1000")}}}},
	}}
	if _, err := admin.CoreV1().Pods("default").Create(ctx, big, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	apiWait("the pod that cannot fit Failed", func() bool {
		p, err := admin.CoreV1().Pods("default").Get(ctx, "too-big", metav1.GetOptions{})
		return err == nil && p.Status.Phase == v1.PodFailed && p.Status.Reason == "OutOfcpu" &&
			strings.HasPrefix(p.Status.Message, "Pod was rejected: Node didn't have enough resource: cpu, requested: 1000000")
	})
	// The kubelet's events in the API, written with the node's credentials:
	// the pod's container created and started, the refusal, the node's start.
	apiWait("the kubelet's events in the API", func() bool {
		evs, err := admin.CoreV1().Events("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		seen := map[string]bool{}
		for _, e := range evs.Items {
			if e.Source.Component == "kubelet" && e.Source.Host == nodeName {
				seen[e.InvolvedObject.Name+" "+e.Reason] = true
			}
		}
		return seen["web Pulled"] && seen["web Created"] && seen["web Started"] && seen["too-big OutOfcpu"] &&
			seen[nodeName+" Starting"] && seen[nodeName+" NodeReady"]
	})
	if err := admin.CoreV1().Pods("default").Delete(ctx, "too-big", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// A graceful delete: stopped, then the agent finishes the deletion.
	if err := admin.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	apiWait("the deleted pod gone from the API", func() bool {
		_, err := admin.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if rs := h.runtimePod(api.UID); len(rs.SandboxStatuses) != 0 {
		t.Errorf("the deleted pod's sandboxes are still in the runtime: %d", len(rs.SandboxStatuses))
	}
	h.removeManifest("static")
	apiWait("the mirror pod gone with its static pod", func() bool {
		_, err := admin.CoreV1().Pods("default").Get(ctx, "static-"+nodeName, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}
