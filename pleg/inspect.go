package pleg

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"
)

// Inspect reads the runtime status of pod uid: its sandboxes and containers (those
// labelled io.kubernetes.pod.uid=uid), each one's status, newest first, and the IPs
// of its ready sandbox. An object removed while Inspect runs is left out, not an
// error. A pod the runtime knows nothing about gets an empty status.
func Inspect(ctx context.Context, rt Runtime, uid types.UID) (*PodStatus, error) {
	now := time.Now()
	selector := map[string]string{kubetypes.KubernetesPodUIDLabel: string(uid)}
	sandboxes, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("pleg: list sandboxes of pod %s: %w", uid, err)
	}
	containers, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("pleg: list containers of pod %s: %w", uid, err)
	}
	st, err := inspectPod(ctx, rt, uid, sandboxes, containers)
	if err != nil {
		return nil, err
	}
	st.TimeStamp = now
	return st, nil
}

// inspectPod reads the statuses of a pod's listed sandboxes and containers.
func inspectPod(ctx context.Context, rt Runtime, uid types.UID, sandboxes []*runtimeapi.PodSandbox, containers []*runtimeapi.Container) (*PodStatus, error) {
	st := &PodStatus{ID: uid}
	for _, sb := range sandboxes {
		resp, err := rt.PodSandboxStatus(ctx, sb.Id, false)
		if isNotFound(err) {
			continue // removed since it was listed
		}
		if err != nil {
			return nil, fmt.Errorf("pleg: status of sandbox %s of pod %s: %w", sb.Id, uid, err)
		}
		if resp.GetStatus() != nil {
			st.SandboxStatuses = append(st.SandboxStatuses, resp.Status)
		}
	}
	for _, c := range containers {
		resp, err := rt.ContainerStatus(ctx, c.Id, false)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pleg: status of container %s of pod %s: %w", c.Id, uid, err)
		}
		if resp.GetStatus() != nil {
			st.ContainerStatuses = append(st.ContainerStatuses, resp.Status)
		}
	}
	sortSandboxes(st.SandboxStatuses)
	sortContainers(st.ContainerStatuses)
	st.IPs = sandboxIPs(st.SandboxStatuses)
	st.Name, st.Namespace = podName(st)
	if st.Name == "" {
		for _, sb := range sandboxes {
			if n, ns := nameOf(sb.Labels, sb.Metadata); n != "" {
				st.Name, st.Namespace = n, ns
				break
			}
		}
	}
	return st, nil
}

func isNotFound(err error) bool { return err != nil && status.Code(err) == codes.NotFound }

// sortSandboxes orders sandbox statuses newest first.
func sortSandboxes(s []*runtimeapi.PodSandboxStatus) {
	slices.SortStableFunc(s, func(a, b *runtimeapi.PodSandboxStatus) int {
		if c := cmp.Compare(b.CreatedAt, a.CreatedAt); c != 0 {
			return c
		}
		if c := cmp.Compare(b.GetMetadata().GetAttempt(), a.GetMetadata().GetAttempt()); c != 0 {
			return c
		}
		return cmp.Compare(a.Id, b.Id)
	})
}

// sortContainers orders container statuses newest first.
func sortContainers(s []*runtimeapi.ContainerStatus) {
	slices.SortStableFunc(s, func(a, b *runtimeapi.ContainerStatus) int {
		if c := cmp.Compare(b.CreatedAt, a.CreatedAt); c != 0 {
			return c
		}
		if c := cmp.Compare(b.GetMetadata().GetAttempt(), a.GetMetadata().GetAttempt()); c != 0 {
			return c
		}
		return cmp.Compare(a.Id, b.Id)
	})
}

// sandboxIPs returns the IPs of the newest ready sandbox, primary first.
func sandboxIPs(sandboxes []*runtimeapi.PodSandboxStatus) []string {
	for _, sb := range sandboxes {
		if sb.State != runtimeapi.PodSandboxState_SANDBOX_READY || sb.Network == nil {
			continue
		}
		var ips []string
		if sb.Network.Ip != "" {
			ips = append(ips, sb.Network.Ip)
		}
		for _, ip := range sb.Network.AdditionalIps {
			if ip.GetIp() != "" {
				ips = append(ips, ip.Ip)
			}
		}
		return ips
	}
	return nil
}

// podName finds the pod's name and namespace on its sandboxes or containers.
func podName(st *PodStatus) (name, namespace string) {
	for _, sb := range st.SandboxStatuses {
		if n, ns := nameOf(sb.Labels, sb.Metadata); n != "" {
			return n, ns
		}
	}
	for _, c := range st.ContainerStatuses {
		if n := c.Labels[kubetypes.KubernetesPodNameLabel]; n != "" {
			return n, c.Labels[kubetypes.KubernetesPodNamespaceLabel]
		}
	}
	return "", ""
}

func nameOf(labels map[string]string, md *runtimeapi.PodSandboxMetadata) (name, namespace string) {
	if n := labels[kubetypes.KubernetesPodNameLabel]; n != "" {
		return n, labels[kubetypes.KubernetesPodNamespaceLabel]
	}
	return md.GetName(), md.GetNamespace()
}

// podUID is the pod an object belongs to, from its io.kubernetes.pod.uid label;
// objects without it are not the agent's and are ignored.
func podUID(labels map[string]string) types.UID {
	return types.UID(labels[kubetypes.KubernetesPodUIDLabel])
}

// keepIPs returns st.IPs, or the IPs cached for the pod when st has none and no
// sandbox of it is ready: a pod keeps reporting its IPs after it stopped, as the
// kubelet does.
func keepIPs(c Cache, st *PodStatus) []string {
	if len(st.IPs) > 0 {
		return st.IPs
	}
	for _, sb := range st.SandboxStatuses {
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			return st.IPs
		}
	}
	old, err := c.Get(st.ID)
	if err != nil || old == nil {
		return nil
	}
	return old.IPs
}
