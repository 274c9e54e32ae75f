package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/bench/internal/daemon"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
)

const benchImage = "nodekit.local/busybox:latest"

// criRuntime is one CRI runtime under test, driven by the same client code whatever
// serves the socket.
type criRuntime struct {
	name    string // "nodekit" or "containerd"
	socket  string
	daemon  *daemon.Daemon
	conn    *grpc.ClientConn
	rt      runtime.RuntimeServiceClient
	img     runtime.ImageServiceClient
	logDir  string // pods' log directories go below
	cgroup  string // pods' cgroup parents go below (/nkbench-<id>/<name>)
	ws      *workspace
	version string // from the Version RPC
	// helpers lists the per-pod helper processes (monitors or shims) for the
	// memory measurement; pause lists the pause processes (containerd only).
	helpers func([]procfs.Proc) []procfs.Proc
	pause   func(all, helpers []procfs.Proc) []procfs.Proc
	// onPod is told every sandbox id the runtime returns (for cleanup).
	onPod func(id string)
}

// criSteps names the RPCs of one iteration, in order.
var criSteps = []string{"RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"}

// dial connects to the runtime's socket and waits (up to deadline) until the
// Version RPC answers.
func (r *criRuntime) dial(ctx context.Context, deadline time.Duration) error {
	conn, err := grpc.NewClient("unix://"+r.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("%s: dial %s: %w", r.name, r.socket, err)
	}
	r.conn = conn
	r.rt = runtime.NewRuntimeServiceClient(conn)
	r.img = runtime.NewImageServiceClient(conn)
	end := time.Now().Add(deadline)
	for {
		if r.daemon != nil && r.daemon.Exited() {
			return fmt.Errorf("%s exited during start-up: %v\n%s", r.name, r.daemon.Err(), r.daemon.LogTail(20))
		}
		if _, err := os.Stat(r.socket); err == nil {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			v, err := r.rt.Version(cctx, &runtime.VersionRequest{})
			cancel()
			if err == nil {
				r.version = v.GetRuntimeName() + " " + v.GetRuntimeVersion()
				return nil
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(end) {
			tail := ""
			if r.daemon != nil {
				tail = "\n" + r.daemon.LogTail(20)
			}
			return fmt.Errorf("%s: socket %s not answering after %s%s", r.name, r.socket, deadline, tail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *criRuntime) close() {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

// ready checks the runtime's Status conditions (RuntimeReady, and NetworkReady if
// needNetwork) and that the benchmark image is there.
func (r *criRuntime) ready(ctx context.Context, needNetwork bool) (networkReady bool, err error) {
	st, err := r.rt.Status(ctx, &runtime.StatusRequest{})
	if err != nil {
		return false, fmt.Errorf("%s: Status: %w", r.name, err)
	}
	conds := map[string]*runtime.RuntimeCondition{}
	for _, c := range st.GetStatus().GetConditions() {
		conds[c.GetType()] = c
	}
	if c := conds[runtime.RuntimeReady]; !c.GetStatus() {
		return false, fmt.Errorf("%s: RuntimeReady is false: %s %s", r.name, c.GetReason(), c.GetMessage())
	}
	nc := conds[runtime.NetworkReady]
	if needNetwork && !nc.GetStatus() {
		return false, fmt.Errorf("%s: NetworkReady is false: %s %s", r.name, nc.GetReason(), nc.GetMessage())
	}
	is, err := r.img.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: benchImage}})
	if err != nil {
		return false, fmt.Errorf("%s: ImageStatus %s: %w", r.name, benchImage, err)
	}
	if is.GetImage() == nil {
		return false, fmt.Errorf("%s: image %s not found", r.name, benchImage)
	}
	return nc.GetStatus(), nil
}

// waitReady polls ready until it succeeds or deadline passes (a runtime may load
// its CNI configuration in the background).
func (r *criRuntime) waitReady(ctx context.Context, needNetwork bool, deadline time.Duration) (bool, error) {
	end := time.Now().Add(deadline)
	for {
		netReady, err := r.ready(ctx, needNetwork)
		if err == nil {
			return netReady, nil
		}
		if time.Now().After(end) || ctx.Err() != nil {
			if r.daemon != nil {
				err = fmt.Errorf("%w\n%s", err, r.daemon.LogTail(20))
			}
			return false, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pod is one pod the benchmark created.
type pod struct {
	sandbox, container, cgroup string
}

func (r *criRuntime) podConfig(label string) *runtime.PodSandboxConfig {
	return &runtime.PodSandboxConfig{
		Metadata: &runtime.PodSandboxMetadata{
			Name:      r.name + "-" + label,
			Namespace: "bench",
			Uid:       r.ws.id + "-" + r.name + "-" + label,
			Attempt:   0,
		},
		LogDirectory: filepath.Join(r.logDir, label),
		Linux: &runtime.LinuxPodSandboxConfig{
			CgroupParent: path.Join(r.cgroup, "pod-"+label),
			SecurityContext: &runtime.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
			},
		},
	}
}

func containerConfig() *runtime.ContainerConfig {
	return &runtime.ContainerConfig{
		Metadata: &runtime.ContainerMetadata{Name: "sleep", Attempt: 0},
		Image:    &runtime.ImageSpec{Image: benchImage},
		Command:  []string{"sleep", "3600"},
		LogPath:  "sleep.log",
		Linux: &runtime.LinuxContainerConfig{
			SecurityContext: &runtime.LinuxContainerSecurityContext{
				NamespaceOptions: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
			},
		},
	}
}

// startPod runs a sandbox with one `sleep 3600` container and returns when the
// container runs. steps receives the duration of each RPC (RunPodSandbox,
// CreateContainer, StartContainer). On error, whatever was created is removed.
func (r *criRuntime) startPod(ctx context.Context, label string, steps *[]time.Duration) (pod, error) {
	cfg := r.podConfig(label)
	p := pod{cgroup: cfg.Linux.CgroupParent}
	t := time.Now()
	lap := func() {
		now := time.Now()
		*steps = append(*steps, now.Sub(t))
		t = now
	}
	rs, err := r.rt.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return p, fmt.Errorf("%s %s: RunPodSandbox: %w", r.name, label, err)
	}
	lap()
	p.sandbox = rs.GetPodSandboxId()
	if r.onPod != nil {
		r.onPod(p.sandbox)
	}
	cc, err := r.rt.CreateContainer(ctx, &runtime.CreateContainerRequest{PodSandboxId: p.sandbox, Config: containerConfig(), SandboxConfig: cfg})
	if err != nil {
		_ = r.removePod(context.WithoutCancel(ctx), p)
		return p, fmt.Errorf("%s %s: CreateContainer: %w", r.name, label, err)
	}
	lap()
	p.container = cc.GetContainerId()
	if _, err := r.rt.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: p.container}); err != nil {
		_ = r.removePod(context.WithoutCancel(ctx), p)
		return p, fmt.Errorf("%s %s: StartContainer: %w", r.name, label, err)
	}
	lap()
	return p, nil
}

// stopPod tears a pod down the way the kubelet does for a deleted pod: stop and
// remove the container, then stop and remove the sandbox.
func (r *criRuntime) stopPod(ctx context.Context, p pod, steps *[]time.Duration) error {
	t := time.Now()
	lap := func() {
		now := time.Now()
		*steps = append(*steps, now.Sub(t))
		t = now
	}
	if _, err := r.rt.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: p.container, Timeout: 0}); err != nil {
		return fmt.Errorf("%s: StopContainer: %w", r.name, err)
	}
	lap()
	if _, err := r.rt.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: p.container}); err != nil {
		return fmt.Errorf("%s: RemoveContainer: %w", r.name, err)
	}
	lap()
	if _, err := r.rt.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: p.sandbox}); err != nil {
		return fmt.Errorf("%s: StopPodSandbox: %w", r.name, err)
	}
	lap()
	if _, err := r.rt.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: p.sandbox}); err != nil {
		return fmt.Errorf("%s: RemovePodSandbox: %w", r.name, err)
	}
	lap()
	return nil
}

// removePod removes a pod after a failure (untimed, best effort: the callers
// that ignore its error leave what it could not remove to removeAllPods and
// the workspace's cleanup).
func (r *criRuntime) removePod(ctx context.Context, p pod) error {
	if p.sandbox == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err1 := r.rt.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: p.sandbox})
	_, err2 := r.rt.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: p.sandbox})
	if err2 == nil {
		r.ws.removePodCgroup(p.cgroup)
	}
	return errors.Join(err1, err2)
}

// checkRunning asserts the pod's container reports RUNNING.
func (r *criRuntime) checkRunning(ctx context.Context, p pod) error {
	st, err := r.rt.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: p.container})
	if err != nil {
		return fmt.Errorf("%s: ContainerStatus: %w", r.name, err)
	}
	if s := st.GetStatus().GetState(); s != runtime.ContainerState_CONTAINER_RUNNING {
		return fmt.Errorf("%s: container %s is %s after StartContainer, want running", r.name, p.container, s)
	}
	return nil
}

// iteration runs one timed pod life cycle: RunPodSandbox → CreateContainer →
// StartContainer [running] → StopContainer(0) → RemoveContainer → StopPodSandbox →
// RemovePodSandbox [done]. The pod's cgroup parent is removed afterwards, untimed.
func (r *criRuntime) iteration(ctx context.Context, label string, verify bool) (sample, error) {
	var s sample
	start := time.Now()
	p, err := r.startPod(ctx, label, &s.steps)
	if err != nil {
		return s, err
	}
	s.running = time.Since(start)
	if verify {
		// Only in the warm-up: an extra RPC in a timed iteration would skew it.
		checkStart := time.Now()
		if err := r.checkRunning(ctx, p); err != nil {
			_ = r.removePod(context.WithoutCancel(ctx), p)
			return s, err
		}
		start = start.Add(time.Since(checkStart)) // do not count the check
	}
	if err := r.stopPod(ctx, p, &s.steps); err != nil {
		_ = r.removePod(context.WithoutCancel(ctx), p)
		return s, fmt.Errorf("%s %s: %w", r.name, label, err)
	}
	s.full = time.Since(start)
	r.ws.removePodCgroup(p.cgroup)
	return s, nil
}

// removeAllPods stops and removes every pod the runtime knows (they are all ours:
// each daemon has its own root and state under the workspace).
func (r *criRuntime) removeAllPods(ctx context.Context) (int, error) {
	if r.rt == nil {
		return 0, nil
	}
	ls, err := r.rt.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
	if err != nil {
		return 0, fmt.Errorf("ListPodSandbox: %w", err)
	}
	var n int
	var errs []error
	for _, sb := range ls.GetItems() {
		p := pod{sandbox: sb.GetId()}
		if cfg := sb.GetMetadata(); cfg != nil {
			// The cgroup parent is not in the list item; rebuild it from the name.
			if label, ok := strings.CutPrefix(cfg.GetName(), r.name+"-"); ok {
				p.cgroup = path.Join(r.cgroup, "pod-"+label)
			}
		}
		if err := r.removePod(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: %w", sb.GetId(), err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// objectIDs lists the ids of every pod and container the runtime knows (for
// cleanup: cgroups named after them).
func (r *criRuntime) objectIDs(ctx context.Context) []string {
	if r.rt == nil {
		return nil
	}
	var ids []string
	if ls, err := r.rt.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{}); err == nil {
		for _, p := range ls.GetItems() {
			ids = append(ids, p.GetId())
		}
	}
	if ls, err := r.rt.ListContainers(ctx, &runtime.ListContainersRequest{}); err == nil {
		for _, c := range ls.GetContainers() {
			ids = append(ids, c.GetId())
		}
	}
	return ids
}
