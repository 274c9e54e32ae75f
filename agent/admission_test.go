package agent

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodekit-dev/nodekit/agent/podsource"
)

func TestAdmitPredicates(t *testing.T) {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"disk": "ssd"}},
		Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: "drain", Effect: v1.TaintEffectNoExecute}}}}
	node.Status.Allocatable = v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("1Gi"), v1.ResourcePods: resource.MustParse("3")}
	tolerate := []v1.Toleration{{Key: "drain", Operator: v1.TolerationOpExists}}
	pod := func(name, cpu string, mutate ...func(*v1.Pod)) *v1.Pod {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{podsource.AnnotationSource: podsource.SourceAPI}},
			Spec: v1.PodSpec{NodeName: "n1", Tolerations: tolerate, Containers: []v1.Container{{Name: "c"}}}}
		if cpu != "" {
			p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}
		}
		for _, m := range mutate {
			m(p)
		}
		return p
	}
	hostPort := func(port int32) func(*v1.Pod) {
		return func(p *v1.Pod) { p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: port}} }
	}
	running := []*v1.Pod{pod("a", "1500m", hostPort(8080))}
	tests := []struct {
		name   string
		pod    *v1.Pod
		others []*v1.Pod
		reason string
		msg    string
	}{
		{"fits", pod("b", "500m"), running, "", ""},
		{"cpu", pod("b", "600m"), running, "OutOfcpu", "Node didn't have enough resource: cpu, requested: 600, used: 1500, capacity: 2000"},
		{"memory", pod("b", "", func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceMemory: resource.MustParse("2Gi")}
		}), nil, "OutOfmemory", "Node didn't have enough resource: memory"},
		{"pods", pod("d", ""), []*v1.Pod{pod("a", ""), pod("b", ""), pod("c", "")}, "OutOfpods", "requested: 1, used: 3, capacity: 3"},
		{"node name", pod("b", "", func(p *v1.Pod) { p.Spec.NodeName = "n2" }), nil, "NodeName", "Predicate NodeName failed"},
		{"node selector", pod("b", "", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "hdd"} }), nil, "NodeAffinity", "didn't match Pod's node affinity/selector"},
		{"node selector matches", pod("b", "", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }), nil, "", ""},
		{"host port", pod("b", "", hostPort(8080)), running, "NodePorts", "didn't have free ports"},
		{"other host port", pod("b", "", hostPort(8081)), running, "", ""},
		{"NoExecute taint", pod("b", "", func(p *v1.Pod) { p.Spec.Tolerations = nil }), nil, "TaintToleration", "untolerated taint"},
		{"static pods are not refused for room nor taints", pod("s", "3", func(p *v1.Pod) {
			p.Annotations[podsource.AnnotationSource] = podsource.SourceFile
			p.Spec.Tolerations = nil
		}), running, "", ""},
	}
	for _, tt := range tests {
		reason, msg, ok := admitPredicates(tt.pod, node, tt.others)
		if ok != (tt.reason == "") || reason != tt.reason || !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: %v %q %q, want %q %q", tt.name, ok, reason, msg, tt.reason, tt.msg)
		}
	}
}
