package agent

import (
	"context"
	"runtime"
	"sort"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Version is the agent's version as a node reports it (nodeInfo.kubeletVersion):
// the Kubernetes release whose kubelet behaviour it follows.
const Version = "v1.37.2-nodekit"

// Node describes the node as the kubelet reports it to the API server: labels,
// addresses, capacity and allocatable, the conditions Ready, MemoryPressure,
// DiskPressure and PIDPressure with the kubelet's reasons, nodeInfo and the
// images. Standalone, `nodekit-kubelet get node` shows it; in cluster mode it is
// what the node status would carry.
func (a *Agent) Node(ctx context.Context) (*v1.Node, error) {
	now := metav1.NewTime(a.clock.Now())
	n := &v1.Node{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              a.cfg.NodeName,
			CreationTimestamp: metav1.NewTime(a.started),
			Labels: map[string]string{
				v1.LabelHostname:   a.cfg.NodeName,
				v1.LabelOSStable:   runtime.GOOS,
				v1.LabelArchStable: runtime.GOARCH,
			},
		},
	}
	n.Status.Capacity = a.node0.capacity.DeepCopy()
	n.Status.Allocatable = a.node0.allocatable.DeepCopy()
	for _, ip := range a.hostIPs {
		n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip})
	}
	n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeHostName, Address: a.cfg.NodeName})
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = a.kubeletPort()

	ready := v1.NodeCondition{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady",
		Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: metav1.NewTime(a.started)}
	if err := a.Healthy(); err != nil {
		ready.Status, ready.Reason, ready.Message = v1.ConditionFalse, "KubeletNotReady", "PLEG is not healthy: "+err.Error()
	} else if st, err := a.rt.Status(ctx, false); err != nil {
		ready.Status, ready.Reason, ready.Message = v1.ConditionFalse, "KubeletNotReady", "container runtime status check may not have completed yet: "+err.Error()
	} else {
		for _, c := range st.GetStatus().GetConditions() {
			if !c.GetStatus() {
				ready.Status, ready.Reason = v1.ConditionFalse, "KubeletNotReady"
				ready.Message = "container runtime not ready: " + c.GetType() + "=false reason:" + c.GetReason() + " message:" + c.GetMessage()
				break
			}
		}
	}
	n.Status.Conditions = append(a.evictor.NodeConditions(now.Time), ready)

	if v, err := a.rt.Version(ctx, "v1"); err == nil {
		n.Status.NodeInfo.ContainerRuntimeVersion = v.GetRuntimeName() + "://" + v.GetRuntimeVersion()
	}
	n.Status.NodeInfo.KubeletVersion = Version
	n.Status.NodeInfo.OperatingSystem, n.Status.NodeInfo.Architecture = runtime.GOOS, runtime.GOARCH
	if mi, err := a.node.Machine(); err == nil {
		n.Status.NodeInfo.MachineID, n.Status.NodeInfo.SystemUUID, n.Status.NodeInfo.BootID = mi.MachineID, mi.SystemUUID, mi.BootID
		n.Status.NodeInfo.KernelVersion, n.Status.NodeInfo.OSImage = mi.KernelVersion, mi.OSImage
	}
	if imgs, err := a.opts.Images.ListImages(ctx, nil); err == nil {
		for _, img := range imgs {
			names := append(append([]string{}, img.GetRepoDigests()...), img.GetRepoTags()...)
			n.Status.Images = append(n.Status.Images, v1.ContainerImage{Names: names, SizeBytes: int64(img.GetSize())})
		}
		// Largest first, as the kubelet reports them.
		sort.SliceStable(n.Status.Images, func(i, j int) bool { return n.Status.Images[i].SizeBytes > n.Status.Images[j].SizeBytes })
	}
	return n, nil
}
