package agent

import (
	"fmt"
	"runtime"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"github.com/nodekit-dev/nodekit/agent/podsource"
)

// admitPredicates are the kubelet's general predicates for a pod new to the
// node (its predicateAdmitHandler): room for it beside the pods already
// admitted (pods, cpu, memory, ephemeral-storage requests against
// allocatable), the node name, the required node affinity and selector, free
// host ports, and for pods that are not static the NoExecute taints. It
// returns the kubelet's reason (OutOfcpu, OutOfmemory, OutOfpods, NodeAffinity,
// NodeName, NodePorts, TaintToleration) and message. Static pods are not
// refused for room: the kubelet makes room for them by preemption, which the
// agent does not do.
func admitPredicates(pod *v1.Pod, node *v1.Node, others []*v1.Pod) (reason, message string, ok bool) {
	static := pod.Annotations[podsource.AnnotationSource] == podsource.SourceFile
	if !static {
		if r, m, fit := fits(pod, node, others); !fit {
			return r, m, false
		}
	}
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != node.Name {
		return "NodeName", "Predicate NodeName failed: node(s) didn't match the requested node name", false
	}
	if match, err := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); err != nil || !match {
		return "NodeAffinity", "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector", false
	}
	if portConflict(pod, others) {
		return "NodePorts", "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports", false
	}
	if !static {
		noExecute := func(t *v1.Taint) bool { return t.Effect == v1.TaintEffectNoExecute }
		if _, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, pod.Spec.Tolerations, noExecute, false); untolerated {
			return "TaintToleration", "Predicate TaintToleration failed: node(s) had untolerated taint(s)", false
		}
	}
	return "", "", true
}

// fits checks the pod's requests against what the node has left, in the
// scheduler's order: pods, cpu, memory, ephemeral-storage.
func fits(pod *v1.Pod, node *v1.Node, others []*v1.Pod) (reason, message string, ok bool) {
	alloc := node.Status.Allocatable
	if max := alloc.Pods().Value(); max > 0 && int64(len(others))+1 > max {
		return "OutOfpods", fmt.Sprintf("Node didn't have enough resource: pods, requested: 1, used: %d, capacity: %d", len(others), max), false
	}
	want := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	used := v1.ResourceList{}
	for _, o := range others {
		for name, q := range resourcehelper.PodRequests(o, resourcehelper.PodResourcesOptions{}) {
			sum := used[name]
			sum.Add(q)
			used[name] = sum
		}
	}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage} {
		w, ok := want[name]
		if !ok || w.IsZero() {
			continue
		}
		req, u, capacity := amount(name, w), amount(name, used[name]), amount(name, alloc[name])
		if req+u > capacity {
			return "OutOf" + string(name), fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d",
				name, req, u, capacity), false
		}
	}
	return "", "", true
}

// amount reads a quantity as the scheduler counts it: CPU in millicores, the
// rest in units.
func amount(name v1.ResourceName, q resource.Quantity) int64 {
	if name == v1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// portConflict says whether a host port of pod is taken by another pod (same
// protocol and port, the same or a wildcard host IP).
func portConflict(pod *v1.Pod, others []*v1.Pod) bool {
	type port struct {
		proto v1.Protocol
		ip    string
		port  int32
	}
	hostPorts := func(p *v1.Pod) []port {
		var out []port
		for _, cs := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for _, c := range cs {
				for _, cp := range c.Ports {
					if cp.HostPort <= 0 {
						continue
					}
					proto := cp.Protocol
					if proto == "" {
						proto = v1.ProtocolTCP
					}
					ip := cp.HostIP
					if ip == "" {
						ip = "0.0.0.0"
					}
					out = append(out, port{proto, ip, cp.HostPort})
				}
			}
		}
		return out
	}
	mine := hostPorts(pod)
	if len(mine) == 0 {
		return false
	}
	for _, o := range others {
		for _, theirs := range hostPorts(o) {
			for _, p := range mine {
				if p.proto == theirs.proto && p.port == theirs.port && (p.ip == theirs.ip || p.ip == "0.0.0.0" || theirs.ip == "0.0.0.0") {
					return true
				}
			}
		}
	}
	return false
}

// admissionNode is the node as admission sees it: its name, labels, taints
// and allocatable (no runtime calls).
func (a *Agent) admissionNode() *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: map[string]string{
		v1.LabelHostname: a.cfg.NodeName, v1.LabelOSStable: runtime.GOOS, v1.LabelArchStable: runtime.GOARCH,
	}}}
	for k, v := range a.cfg.NodeLabels {
		n.Labels[k] = v
	}
	n.Spec.Taints = a.cfg.Kubelet.RegisterWithTaints
	n.Status.Allocatable = a.node0.allocatable
	return n
}
