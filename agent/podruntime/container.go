package podruntime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"

	"github.com/nodekit-dev/nodekit/agent/timeline"
	"github.com/nodekit-dev/nodekit/volumes"
)

// startEnv is what starting any container of a sync needs.
type startEnv struct {
	pod        *v1.Pod
	st         *podState
	secrets    []v1.Secret
	sandboxID  string
	sandboxCfg *runtimeapi.PodSandboxConfig
	podIPs     []string
	vols       map[string]volumes.Volume
	// For the timeline: the sync creates a new sandbox (attempt), and why
	// it kills the containers it restarts.
	newSandbox bool
	attempt    uint32
	killed     map[string]string
}

func (e *startEnv) podIP() string {
	if len(e.podIPs) > 0 {
		return e.podIPs[0]
	}
	return ""
}

// startContainer pulls the image, creates and starts the container, then runs
// its postStart hook; a failing hook kills the container (the kubelet's
// startContainer). Restarts of exited containers wait for the crash-loop
// back-off first.
func (m *Manager) startContainer(ctx context.Context, e *startEnv, c *v1.Container) *failure {
	if f := m.crashLoopBackOff(e.pod, c, e.st); f != nil {
		return f
	}
	m.recordStart(e, c)
	ctx = timeline.WithContainer(ctx, c.Name)
	img, f := m.ensureImage(ctx, e.pod, c, e.secrets, e.sandboxCfg)
	if f != nil {
		return f
	}
	imageVols, f := m.ensureVolumeImages(ctx, e, c)
	if f != nil {
		return f
	}
	restarts := 0
	if s := e.st.latest(c.Name); s != nil {
		restarts = restartCount(s) + 1
		if neverStarted(s) {
			// Created but not started: an agent died between CreateContainer
			// and StartContainer, or during a StartContainer the runtime may
			// still be finishing. Start that instance: it runs once, and no
			// restart is counted. A start already under way makes the runtime
			// refuse this one (the container is no longer created): the next
			// sync sees it running.
			err := m.rt.StartContainer(ctx, s.GetId())
			if err == nil {
				m.note(e.pod, timeline.Entry{Kind: timeline.Sync, Container: c.Name, What: "container started (created by an earlier agent)", Reason: EventStarted,
					Message: "Container started", Event: v1.EventTypeNormal})
				m.log.Info("started a container an earlier agent created", "pod", podRef(e.pod), "container", c.Name, "id", s.GetId(), "restartCount", restartCount(s))
				return m.postStart(ctx, e, c, &runtimeapi.ContainerStatus{Id: s.GetId(), Metadata: s.GetMetadata(), Labels: s.GetLabels(), Annotations: s.GetAnnotations()})
			}
			if resp, serr := m.rt.ContainerStatus(ctx, s.GetId(), false); serr == nil && resp.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_CREATED {
				m.log.Info("a container an earlier agent created was started meanwhile", "pod", podRef(e.pod), "container", c.Name, "id", s.GetId(), "state", resp.GetStatus().GetState().String())
				return nil
			}
			// It cannot start: it is replaced under its own restart count
			// and name (the attempt), once it is removed.
			if err := m.rt.RemoveContainer(ctx, s.GetId()); err != nil && !isNotFound(err) {
				return fail(ErrCreateContainer, "remove container %s that never started: %s", s.GetId(), grpcMessage(err))
			}
			restarts = restartCount(s)
		}
	} else {
		// The runtime forgot the container (e.g. after a reboot): continue the
		// count from the log files so logs are not overwritten.
		restarts = restartCountFromLogs(filepath.Join(PodLogsDir(m.podLogsDir, e.pod.Namespace, e.pod.Name, e.pod.UID), c.Name))
	}
	failed := func(reason error, what, msg string) *failure {
		m.note(e.pod, timeline.Entry{Kind: timeline.Sync, Container: c.Name, What: what, Reason: EventFailed,
			Message: "Error: " + msg, Error: msg, Event: v1.EventTypeWarning})
		return fail(reason, "%s", msg)
	}
	cfg, err := m.containerConfig(ctx, e, c, restarts, img, imageVols)
	if err != nil {
		return failed(ErrCreateContainerConfig, "container config failed", err.Error())
	}
	id, err := m.rt.CreateContainer(ctx, e.sandboxID, cfg, e.sandboxCfg)
	if err != nil {
		return failed(ErrCreateContainer, "create container failed", grpcMessage(err))
	}
	m.note(e.pod, timeline.Entry{Kind: timeline.Sync, Container: c.Name, What: "container created", Reason: EventCreated,
		Message: "Container created", Event: v1.EventTypeNormal})
	if err := m.rt.StartContainer(ctx, id); err != nil {
		return failed(ErrRunContainer, "start container failed", grpcMessage(err))
	}
	m.note(e.pod, timeline.Entry{Kind: timeline.Sync, Container: c.Name, What: "container started", Reason: EventStarted,
		Message: "Container started", Event: v1.EventTypeNormal})
	m.log.Info("started container", "pod", podRef(e.pod), "container", c.Name, "id", id, "restartCount", restarts)
	return m.postStart(ctx, e, c, &runtimeapi.ContainerStatus{Id: id, Metadata: cfg.Metadata, Labels: cfg.Labels, Annotations: cfg.Annotations})
}

// postStart runs the started container's postStart hook; a failing hook kills
// the container.
func (m *Manager) postStart(ctx context.Context, e *startEnv, c *v1.Container, st *runtimeapi.ContainerStatus) *failure {
	id := st.GetId()
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		begin := m.clock.Now()
		msg, err := m.runHook(ctx, e.pod, c, id, e.podIP(), c.Lifecycle.PostStart)
		took := m.clock.Since(begin)
		if err == nil {
			m.note(e.pod, timeline.Entry{Kind: timeline.Hook, Container: c.Name, What: "postStart hook succeeded", Message: msg, Took: took})
		} else {
			m.log.Warn("postStart hook failed", "pod", podRef(e.pod), "container", c.Name, "err", err)
			m.note(e.pod, timeline.Entry{Kind: timeline.Hook, Container: c.Name, What: "postStart hook failed", Reason: EventFailedPostStart,
				Message: "PostStartHook failed", Error: msg, Took: took, Event: v1.EventTypeWarning})
			if kerr := m.killContainer(ctx, e.pod, st, c, "FailedPostStartHook", ReasonFailedPostStartHook, nil, nil); kerr != nil {
				m.log.Warn("kill container after failed postStart hook", "pod", podRef(e.pod), "container", c.Name, "err", kerr)
			}
			return fail(ErrPostStartHook, "%s", msg)
		}
	}
	return nil
}

// crashLoopBackOff refuses to restart an exited container until its back-off,
// counted from its last exit, is over; otherwise it records the restart.
func (m *Manager) crashLoopBackOff(pod *v1.Pod, c *v1.Container, st *podState) *failure {
	s := st.latestExited(c.Name)
	if s == nil {
		return nil
	}
	key := backOffKey(pod, c)
	exit := finishedAt(s)
	if d := m.crashLoop.remainingSince(key, exit); d > 0 {
		delay := m.crashLoop.delay(key)
		m.note(pod, timeline.Entry{Kind: timeline.BackOff, Container: c.Name,
			What:   fmt.Sprintf("back-off restarting container (%s, %s left)", exitText(s), d.Round(time.Millisecond)),
			Reason: EventBackOff, Took: delay, Event: v1.EventTypeWarning,
			Message: fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)})
		f := fail(ErrCrashLoopBackOff, "back-off %s restarting failed container=%s pod=%s", delay, c.Name, podRef(pod))
		f.retry = d
		return f
	}
	m.crashLoop.next(key, exit)
	return nil
}

// containerConfig generates the CRI config of a container (the kubelet's
// generateContainerConfig).
func (m *Manager) containerConfig(ctx context.Context, e *startEnv, c *v1.Container, restarts int, img pulledImage, imageVols map[string]string) (*runtimeapi.ContainerConfig, error) {
	pod := e.pod
	hostIPs := m.hostIPs
	env, err := containerEnv(ctx, pod, c, envContext{
		podIP: e.podIP(), podIPs: e.podIPs, hostIPs: hostIPs, nodeName: m.nodeName, allocatable: m.allocatable,
		objects: m.objects,
	})
	if err != nil {
		return nil, err
	}
	mounts, err := m.containerMounts(pod, c, e.vols, env, imageVols)
	if err != nil {
		return nil, err
	}
	sec, err := m.containerSecurity(pod, c, img.uid, img.user)
	if err != nil {
		return nil, err
	}
	logDir := filepath.Join(PodLogsDir(m.podLogsDir, pod.Namespace, pod.Name, pod.UID), c.Name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create container log directory: %w", err)
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: uint32(restarts)},
		Image:       &runtimeapi.ImageSpec{Image: img.ref, UserSpecifiedImage: c.Image},
		Command:     expandAll(c.Command, env),
		Args:        expandAll(c.Args, env),
		WorkingDir:  c.WorkingDir,
		Labels:      containerLabels(pod, c),
		Annotations: containerAnnotations(pod, c, restarts),
		Mounts:      mounts,
		LogPath:     filepath.Join(c.Name, strconv.Itoa(restarts)+".log"),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       m.containerResources(pod, c),
			SecurityContext: sec,
		},
	}
	for _, ev := range env {
		cfg.Envs = append(cfg.Envs, &runtimeapi.KeyValue{Key: ev.name, Value: []byte(ev.value)})
	}
	if c.Lifecycle != nil && c.Lifecycle.StopSignal != nil {
		sig, ok := runtimeapi.Signal_value["SIGNAL_"+signalNames.Replace(string(*c.Lifecycle.StopSignal))]
		if !ok {
			return nil, fmt.Errorf("lifecycle.stopSignal %q is not a known signal", *c.Lifecycle.StopSignal)
		}
		cfg.StopSignal = runtimeapi.Signal(sig)
	}
	return cfg, nil
}

// signalNames spells API signals (SIGRTMIN+1) as CRI enum names (SIGRTMINPLUS1).
var signalNames = strings.NewReplacer("+", "PLUS", "-", "MINUS")

var logFileName = regexp.MustCompile(`^(\d+)\.log(\..*)?$`)

// restartCountFromLogs returns one more than the highest <n>.log in dir (0 if
// none).
func restartCountFromLogs(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	next := 0
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		mt := logFileName.FindStringSubmatch(e.Name())
		if mt == nil {
			continue
		}
		if n, err := strconv.Atoi(mt[1]); err == nil && n+1 > next {
			next = n + 1
		}
	}
	return next
}

// grpcMessage is the message of a gRPC error without its code prefix.
func grpcMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

func isNotFound(err error) bool { return crierrors.IsNotFound(err) }

// neverStarted says whether a container instance never ran: created and not
// started. (A container in an unknown state may have run, even without a start
// time: the runtime lost it while starting it.)
func neverStarted(s *runtimeapi.ContainerStatus) bool {
	return s.GetState() == runtimeapi.ContainerState_CONTAINER_CREATED
}
