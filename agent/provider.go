package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/agent/server"
	"github.com/nodekit-dev/nodekit/agent/stats"
	"github.com/nodekit-dev/nodekit/pleg"
)

// LocalSocket is where the agent serves its API to local root, without TLS, for
// `nodekit-kubelet get pods`: <root-dir>/kubelet.sock.
func LocalSocket(rootDir string) string { return filepath.Join(rootDir, "kubelet.sock") }

func (a *Agent) newServer() error {
	k := &a.cfg.Kubelet
	port := int(k.Port)
	healthz := int(*k.HealthzPort)
	if healthz == 0 {
		healthz = -1 // the kubelet's 0: off
	}
	var ips []net.IP
	for _, s := range a.hostIPs {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		}
	}
	srv, err := server.New(server.Options{
		Provider:       provider{a},
		Address:        k.Address,
		Port:           port,
		ReadOnlyPort:   int(k.ReadOnlyPort),
		HealthzAddress: k.HealthzBindAddress,
		HealthzPort:    healthz,
		TLSCertFile:    k.TLSCertFile,
		TLSKeyFile:     k.TLSPrivateKeyFile,
		CertDir:        a.certDir(),
		Hostname:       a.cfg.NodeName,
		NodeIPs:        ips,
		AnonymousAuth:  *k.Authentication.Anonymous.Enabled,
		ClientCAFile:   k.Authentication.X509.ClientCAFile,
		LocalSocket:    LocalSocket(a.cfg.RootDir),
		Metrics:        a.opts.Registry,
		Healthz:        a.Healthy,
		Logger:         a.log.With("component", "server"),
		Clock:          a.clock,
	})
	if err != nil {
		return err
	}
	a.server = srv
	return nil
}

// Addrs returns where the agent's API listens (nil when it has none).
func (a *Agent) Addrs() *server.Addrs {
	if a.server == nil {
		return nil
	}
	addrs := a.server.Addrs()
	return &addrs
}

// provider answers the kubelet API from the agent's state.
type provider struct{ a *Agent }

func (p provider) GetPods() []*v1.Pod { return p.a.Pods() }

// GetRunningPods lists the pods the runtime runs for the agent, in the kubelet's
// /runningpods form: identity and containers (name, image, id), no spec beyond.
func (p provider) GetRunningPods(ctx context.Context) ([]*v1.Pod, error) {
	rt := p.a.rt
	sandboxes, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}})
	if err != nil {
		return nil, err
	}
	containers, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}})
	if err != nil {
		return nil, err
	}
	pods := map[types.UID]*v1.Pod{}
	for _, sb := range sandboxes {
		uid := types.UID(sb.GetLabels()[kubetypes.KubernetesPodUIDLabel])
		if uid == "" {
			continue
		}
		pods[uid] = &v1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: sb.GetLabels()[kubetypes.KubernetesPodNameLabel], Namespace: sb.GetLabels()[kubetypes.KubernetesPodNamespaceLabel], UID: uid,
		}}
	}
	for _, c := range containers {
		pod := pods[types.UID(c.GetLabels()[kubetypes.KubernetesPodUIDLabel])]
		if pod == nil {
			continue
		}
		pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: c.GetMetadata().GetName(), Image: c.GetImage().GetImage()})
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, v1.ContainerStatus{
			Name: c.GetMetadata().GetName(), ContainerID: p.a.rtName + "://" + c.GetId(), Image: c.GetImage().GetImage(), ImageID: c.GetImageRef(),
			State: v1.ContainerState{Running: &v1.ContainerStateRunning{}},
		})
	}
	out := make([]*v1.Pod, 0, len(pods))
	for _, pod := range pods {
		out = append(out, pod)
	}
	sortPods(out)
	return out, nil
}

// GetContainerLogPath finds the CRI log file of a container of a desired pod: the
// newest instance, or the one before it with previous.
func (p provider) GetContainerLogPath(namespace, name, container string, previous bool) (string, error) {
	var pod *v1.Pod
	for _, x := range p.a.Pods() {
		if x.Namespace == namespace && x.Name == name {
			pod = x
			break
		}
	}
	if pod == nil {
		return "", fmt.Errorf("pod %s/%s: %w", namespace, name, server.ErrNotFound)
	}
	ctx := context.Background()
	rs, err := pleg.Inspect(ctx, p.a.rt, pod.UID)
	if err != nil {
		return "", err
	}
	var instances []*runtimeapi.ContainerStatus // newest first
	for _, cs := range rs.ContainerStatuses {
		if cs.GetMetadata().GetName() == container {
			instances = append(instances, cs)
		}
	}
	i := 0
	if previous {
		i = 1
	}
	if len(instances) <= i {
		what := "container"
		if previous {
			what = "previous terminated container"
		}
		return "", fmt.Errorf("%s %q in pod %s/%s: %w", what, container, namespace, name, server.ErrNotFound)
	}
	return instances[i].GetLogPath(), nil
}

// Summary assembles the Summary API from /proc (node) and the runtime's stats
// (pods and containers).
func (p provider) Summary(ctx context.Context) (*statsapi.Summary, error) {
	node, err := p.a.node.Stats()
	if err != nil {
		return nil, err
	}
	rt := p.a.rt
	var in stats.CRIStats
	if in.Sandboxes, err = rt.ListPodSandbox(ctx, nil); err != nil {
		return nil, err
	}
	if in.Containers, err = rt.ListContainers(ctx, nil); err != nil {
		return nil, err
	}
	in.SandboxStats, err = rt.ListPodSandboxStats(ctx, &runtimeapi.PodSandboxStatsFilter{})
	if status.Code(err) == codes.Unimplemented {
		in.SandboxStats, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if in.ContainerStats, err = rt.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{}); err != nil {
		return nil, err
	}
	if fs, err := p.a.opts.Images.ImageFsInfo(ctx); err == nil && len(fs.GetImageFilesystems()) > 0 {
		u := fs.GetImageFilesystems()[0]
		used := u.GetUsedBytes().GetValue()
		inodes := u.GetInodesUsed().GetValue()
		imageFs := &statsapi.FsStats{Time: metav1.NewTime(p.a.clock.Now()), UsedBytes: &used, InodesUsed: &inodes}
		// The runtime says what its images use; the filesystem says how big it is
		// and what is free, which the imagefs.* eviction signals need (the
		// kubelet has them from cAdvisor).
		if capacity, avail, files, free, ok := fsFigures(u.GetFsId().GetMountpoint()); ok {
			imageFs.CapacityBytes, imageFs.AvailableBytes, imageFs.Inodes, imageFs.InodesFree = &capacity, &avail, &files, &free
		}
		node.Runtime = &statsapi.RuntimeStats{ImageFs: imageFs}
	} else if err != nil && !errors.Is(err, context.Canceled) {
		p.a.log.Debug("image filesystem stats", "err", err)
	}
	pods := stats.FromCRI(in, stats.PodOptions{PodLogsDir: p.a.cfg.Kubelet.PodLogsDir, Now: p.a.clock.Now()})
	p.a.addVolumeStats(pods)
	return &statsapi.Summary{Node: *node, Pods: pods}, nil
}

func sortPods(pods []*v1.Pod) {
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
}

// GetNode describes the node (server.NodeProvider).
func (p provider) GetNode(ctx context.Context) (*v1.Node, error) { return p.a.Node(ctx) }
