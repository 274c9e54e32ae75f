package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/agent/server"
	"github.com/nodekit-dev/nodekit/agent/stats"
	"github.com/nodekit-dev/nodekit/agent/timeline"
	"github.com/nodekit-dev/nodekit/internal/containerid"
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
	tokens, authz := a.webhookAuth()
	srv, err := server.New(server.Options{
		Provider:           provider{a},
		Address:            k.Address,
		Port:               port,
		ReadOnlyPort:       int(k.ReadOnlyPort),
		HealthzAddress:     k.HealthzBindAddress,
		HealthzPort:        healthz,
		TLSCertFile:        k.TLSCertFile,
		TLSKeyFile:         k.TLSPrivateKeyFile,
		CertDir:            a.certDir(),
		Hostname:           a.cfg.NodeName,
		NodeIPs:            ips,
		AnonymousAuth:      *k.Authentication.Anonymous.Enabled,
		ClientCAFile:       k.Authentication.X509.ClientCAFile,
		TokenAuthenticator: tokens,
		Authorizer:         authz,
		NodeName:           a.cfg.NodeName,
		LocalSocket:        LocalSocket(a.cfg.RootDir),
		Metrics:            a.opts.Registry,
		Healthz:            a.Healthy,
		Logger:             a.log.With("component", "server"),
		Clock:              a.clock,
	})
	if err != nil {
		return err
	}
	a.server = srv
	return nil
}

// webhookAuth returns the webhook authenticator and authorizer the config
// asks for (authentication.webhook.enabled, authorization.mode Webhook), which
// need an API server: standalone, they are off (bearer tokens are not
// accepted, every authenticated client is allowed), and the log says so.
func (a *Agent) webhookAuth() (server.TokenAuthenticator, server.Authorizer) {
	k := &a.cfg.Kubelet
	webhookAuthn := k.Authentication.Webhook.Enabled != nil && *k.Authentication.Webhook.Enabled
	webhookAuthz := k.Authorization.Mode == kubeletconfig.KubeletAuthorizationModeWebhook
	if a.kube == nil {
		if webhookAuthn || webhookAuthz {
			a.log.Info("standalone: webhook authentication and authorization of the kubelet API are off (they need an API server)",
				"authentication.webhook.enabled", webhookAuthn, "authorization.mode", k.Authorization.Mode)
		}
		return nil, nil
	}
	var tokens server.TokenAuthenticator
	var authz server.Authorizer
	if webhookAuthn {
		tokens = server.NewWebhookAuthenticator(a.kube, server.WebhookAuthenticatorOptions{
			CacheTTL: k.Authentication.Webhook.CacheTTL.Duration, Clock: a.clock,
		})
	}
	if webhookAuthz {
		authz = server.NewWebhookAuthorizer(a.kube, server.WebhookAuthorizerOptions{
			CacheAuthorizedTTL:   k.Authorization.Webhook.CacheAuthorizedTTL.Duration,
			CacheUnauthorizedTTL: k.Authorization.Webhook.CacheUnauthorizedTTL.Duration,
			Clock:                a.clock,
		})
	}
	return tokens, authz
}

// kubeletPort is the port of the main API as the node reports it
// (daemonEndpoints.kubeletEndpoint): the one bound, which --port 0 leaves to
// the system; the configured one when the API is off.
func (a *Agent) kubeletPort() int32 {
	if a.server != nil {
		if addr, ok := a.server.Addrs().Main.(*net.TCPAddr); ok {
			return int32(addr.Port)
		}
	}
	return a.cfg.Kubelet.Port
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
			Name: c.GetMetadata().GetName(), ContainerID: containerid.ID{Type: p.a.rtName, ID: c.GetId()}.String(), Image: c.GetImage().GetImage(), ImageID: c.GetImageRef(),
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

// ContainerRunning says whether the container instance writing logPath runs
// (or is about to): a followed log ends once it does not. The pod is found by
// the UID in the log's directory (<ns>_<name>_<uid>/<container>/N.log), so a
// pod on its way out, no longer desired, is still found.
func (p provider) ContainerRunning(ctx context.Context, _, _, _, logPath string) bool {
	podDir := filepath.Base(filepath.Dir(filepath.Dir(logPath)))
	i := strings.LastIndexByte(podDir, '_')
	if i < 0 {
		return false
	}
	rs, err := pleg.Inspect(ctx, p.a.rt, types.UID(podDir[i+1:]))
	if err != nil {
		return ctx.Err() == nil // unknown: keep following unless the client left
	}
	for _, cs := range rs.ContainerStatuses {
		if cs.GetLogPath() == logPath {
			st := cs.GetState()
			return st == runtimeapi.ContainerState_CONTAINER_RUNNING || st == runtimeapi.ContainerState_CONTAINER_CREATED
		}
	}
	return false
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

// PodTimeline serves /debug/pods/{namespace}/{name}/timeline (server.TimelineProvider).
func (p provider) PodTimeline(namespace, name string) (*timeline.Timeline, bool) {
	return p.a.timeline.PodTimeline(namespace, name)
}

// The streaming side of the API (server.StreamingProvider): the runtime
// prepares each session (CRI Exec, Attach, PortForward) and hands out the URL
// of its streaming server, which the API proxies the client to.

// GetExec prepares cmd in the running container of a desired pod.
func (p provider) GetExec(ctx context.Context, namespace, name string, uid types.UID, container string, cmd []string, o server.StreamOptions) (*url.URL, error) {
	id, err := p.runningContainer(ctx, namespace, name, uid, container)
	if err != nil {
		return nil, err
	}
	resp, err := p.a.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: cmd, Tty: o.TTY, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
	if err != nil {
		return nil, runtimeError("exec", err)
	}
	return streamURL(resp.GetUrl())
}

// GetAttach prepares an attach to the running container of a desired pod.
func (p provider) GetAttach(ctx context.Context, namespace, name string, uid types.UID, container string, o server.StreamOptions) (*url.URL, error) {
	id, err := p.runningContainer(ctx, namespace, name, uid, container)
	if err != nil {
		return nil, err
	}
	resp, err := p.a.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id, Tty: o.TTY, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
	if err != nil {
		return nil, runtimeError("attach", err)
	}
	return streamURL(resp.GetUrl())
}

// GetPortForward prepares a port-forward into the ready sandbox of a desired pod.
func (p provider) GetPortForward(ctx context.Context, namespace, name string, uid types.UID, ports []int32) (*url.URL, error) {
	pod, err := p.findPod(namespace, name, uid)
	if err != nil {
		return nil, err
	}
	rs, err := pleg.Inspect(ctx, p.a.rt, pod.UID)
	if err != nil {
		return nil, err
	}
	var sandbox string
	for _, sb := range rs.SandboxStatuses { // newest first
		if sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			sandbox = sb.GetId()
			break
		}
	}
	if sandbox == "" {
		return nil, fmt.Errorf("pod %s/%s has no ready sandbox: %w", namespace, name, server.ErrNotFound)
	}
	resp, err := p.a.rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: sandbox, Port: ports})
	if err != nil {
		return nil, runtimeError("port-forward", err)
	}
	return streamURL(resp.GetUrl())
}

// RunInContainer runs cmd in the running container of a desired pod to its
// end (no timeout but the request's) and returns its stdout then stderr.
func (p provider) RunInContainer(ctx context.Context, namespace, name string, uid types.UID, container string, cmd []string) ([]byte, error) {
	id, err := p.runningContainer(ctx, namespace, name, uid, container)
	if err != nil {
		return nil, err
	}
	stdout, stderr, err := p.a.rt.ExecSync(ctx, id, cmd, 0)
	out := append(stdout, stderr...)
	if err != nil {
		return out, runtimeError("run", err)
	}
	return out, nil
}

// findPod returns the desired pod namespace/name, which must have uid when
// one is given.
func (p provider) findPod(namespace, name string, uid types.UID) (*v1.Pod, error) {
	for _, x := range p.a.Pods() {
		if x.Namespace == namespace && x.Name == name && (uid == "" || x.UID == uid) {
			return x, nil
		}
	}
	if uid != "" {
		return nil, fmt.Errorf("pod %s/%s with UID %s: %w", namespace, name, uid, server.ErrNotFound)
	}
	return nil, fmt.Errorf("pod %s/%s: %w", namespace, name, server.ErrNotFound)
}

// runningContainer returns the runtime's ID of the running instance of a
// desired pod's container.
func (p provider) runningContainer(ctx context.Context, namespace, name string, uid types.UID, container string) (string, error) {
	pod, err := p.findPod(namespace, name, uid)
	if err != nil {
		return "", err
	}
	rs, err := pleg.Inspect(ctx, p.a.rt, pod.UID)
	if err != nil {
		return "", err
	}
	seen := false
	for _, cs := range rs.ContainerStatuses { // newest first
		if cs.GetMetadata().GetName() != container {
			continue
		}
		if cs.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return cs.GetId(), nil
		}
		seen = true
	}
	if seen {
		return "", fmt.Errorf("container %q in pod %s/%s is not running: %w", container, namespace, name, server.ErrNotFound)
	}
	return "", fmt.Errorf("container %q in pod %s/%s: %w", container, namespace, name, server.ErrNotFound)
}

// runtimeError wraps a runtime's refusal; its NotFound answers 404.
func runtimeError(what string, err error) error {
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("%s: %v: %w", what, err, server.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// streamURL parses the URL of a runtime's streaming session.
func streamURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("the runtime's streaming URL %q: %w", raw, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("the runtime's streaming URL %q is not absolute", raw)
	}
	return u, nil
}
