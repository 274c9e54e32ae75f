package podruntime

import (
	"context"
	"fmt"
	"os"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/agent/timeline"
	"github.com/nodekit-dev/nodekit/pleg"
)

// SyncPod brings the pod's runtime state rs toward its spec (the kubelet's
// SyncPod):
//
//  1. decide what to do (sandbox, init containers, sidecars, app containers,
//     restarts per the restart policy, probe failures);
//  2. kill the pod if its sandbox must be replaced or nothing runs any more,
//     else kill the containers that must go;
//  3. set up volumes (at every sync: their content follows the pod and its
//     objects) and create the sandbox if needed (attempt+1);
//  4. start the next init container or the sidecars due, in order: a failed
//     regular init container stops the sync;
//  5. start the app containers due.
//
// Restarts of exited containers wait for the crash-loop back-off; images are
// pulled per pull policy with their own back-off. rs may be nil for a new pod.
// The result says what failed; RetryAfter when a back-off ends.
func (m *Manager) SyncPod(ctx context.Context, pod *v1.Pod, rs *pleg.PodStatus, pullSecrets []v1.Secret) Result {
	var res Result
	ctx = m.withPod(ctx, pod.UID)
	st := newPodState(rs)
	acts := m.computePodActions(pod, st)
	m.log.Debug("sync pod", "pod", podRef(pod), "actions", acts.String())
	m.recordDecisions(pod, st, &acts)

	if acts.killPod {
		if acts.createSandbox && acts.sandboxID != "" {
			m.note(pod, timeline.Entry{Kind: timeline.Sync, What: "sandbox changed", Reason: EventSandboxChanged,
				Message: "Pod sandbox changed, it will be killed and re-created.", Event: v1.EventTypeNormal})
		}
		if err := m.killPod(ctx, pod, st, nil); err != nil {
			res.Err, res.Reason, res.Message = err, ErrKillContainer.Error(), err.Error()
			return res
		}
		if acts.createSandbox {
			m.purgeInitContainers(ctx, pod, st)
		}
	} else {
		for _, k := range acts.containersToKill {
			if err := m.killContainer(ctx, pod, k.status, k.spec, k.message, k.reason, nil, nil); err != nil {
				res.fail(ErrKillContainer, k.spec.Name, err.Error())
				return res
			}
		}
	}
	m.pruneInitContainers(ctx, pod, st)

	starting := acts.createSandbox || len(acts.initToStart) > 0 || len(acts.containersToStart) > 0
	// Volumes are set up at every sync: their content follows the pod and its
	// objects (only what changed is written).
	vols, err := m.volumes.SetUp(ctx, pod)
	if err != nil && !starting {
		// What runs keeps its volumes as they are; the next sync tries again.
		m.log.Warn("volumes not updated", "pod", podRef(pod), "err", err)
		return res
	}
	if !starting {
		return res
	}

	if m.podCgroups != nil {
		// As the kubelet: the pod's cgroup exists, with its current resources,
		// before anything of the pod runs.
		if _, err := m.podCgroups.EnsurePod(pod); err != nil {
			res.fail(ErrCreatePodCgroup, podRef(pod), err.Error())
			return res
		}
	}

	if err != nil {
		res.fail(ErrMountVolumes, podRef(pod), err.Error())
		m.note(pod, timeline.Entry{Kind: timeline.Sync, What: "set up volumes", Reason: EventFailedMount,
			Message: fmt.Sprintf("MountVolume.SetUp failed: %v", err), Error: err.Error(), Event: v1.EventTypeWarning})
		for _, i := range acts.initToStart {
			m.setWaiting(pod.UID, pod.Spec.InitContainers[i].Name, ErrMountVolumes, err.Error())
		}
		for _, i := range acts.containersToStart {
			m.setWaiting(pod.UID, pod.Spec.Containers[i].Name, ErrMountVolumes, err.Error())
		}
		return res
	}

	cfg, err := m.SandboxConfig(pod, acts.attempt)
	if err != nil {
		reason := ErrConfigPodSandbox
		if acts.createSandbox {
			reason = ErrCreatePodSandbox
		}
		res.fail(reason, podRef(pod), err.Error())
		return res
	}
	env := &startEnv{pod: pod, st: st, secrets: pullSecrets, sandboxID: acts.sandboxID, sandboxCfg: cfg, podIPs: st.rs.IPs, vols: vols,
		newSandbox: acts.createSandbox, attempt: acts.attempt}
	if len(acts.containersToKill) > 0 {
		env.killed = make(map[string]string, len(acts.containersToKill))
		for _, k := range acts.containersToKill {
			env.killed[k.spec.Name] = k.why
		}
	}
	if acts.createSandbox {
		id, ips, err := m.createSandbox(ctx, pod, cfg)
		if err != nil {
			res.fail(ErrCreatePodSandbox, podRef(pod), err.Error())
			m.note(pod, timeline.Entry{Kind: timeline.Sync, What: "create sandbox failed", Reason: EventFailedSandbox,
				Message: fmt.Sprintf("Failed to create pod sandbox: %v", err), Error: err.Error(), Event: v1.EventTypeWarning})
			return res
		}
		env.sandboxID = id
		if !pod.Spec.HostNetwork {
			env.podIPs = ips
		}
	}
	if pod.Spec.HostNetwork && len(env.podIPs) == 0 {
		env.podIPs = m.hostIPs
	}

	start := func(c *v1.Container) bool {
		if f := m.startContainer(ctx, env, c); f != nil {
			m.setWaiting(pod.UID, c.Name, f.reason, f.msg)
			res.add(c.Name, f)
			m.log.Info("container not started", "pod", podRef(pod), "container", c.Name, "reason", f.reason, "message", f.msg)
			return false
		}
		m.clearWaiting(pod.UID, c.Name)
		return true
	}
	for _, i := range acts.initToStart {
		c := &pod.Spec.InitContainers[i]
		if !start(c) && !isRestartableInit(c) {
			return res // the pod cannot initialize further now
		}
	}
	for _, i := range acts.containersToStart {
		start(&pod.Spec.Containers[i])
	}
	return res
}

// createSandbox creates the pod's sandbox and returns its ID and IPs.
func (m *Manager) createSandbox(ctx context.Context, pod *v1.Pod, cfg *runtimeapi.PodSandboxConfig) (string, []string, error) {
	if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil {
		return "", nil, fmt.Errorf("create pod log directory: %w", err)
	}
	id, err := m.rt.RunPodSandbox(ctx, cfg, "")
	if err != nil {
		return "", nil, fmt.Errorf("run sandbox: %s", grpcMessage(err))
	}
	m.log.Info("created sandbox", "pod", podRef(pod), "id", id, "attempt", cfg.GetMetadata().GetAttempt())
	resp, err := m.rt.PodSandboxStatus(ctx, id, false)
	if err != nil {
		return "", nil, fmt.Errorf("sandbox %s status: %w", id, err)
	}
	return id, sandboxIPs(resp.GetStatus()), nil
}

// purgeInitContainers removes every init container instance: a new sandbox runs
// initialization again from the start.
func (m *Manager) purgeInitContainers(ctx context.Context, pod *v1.Pod, st *podState) {
	for i := range pod.Spec.InitContainers {
		for _, s := range st.byName[pod.Spec.InitContainers[i].Name] {
			if err := m.removeContainer(ctx, s); err != nil {
				m.log.Warn("remove init container", "pod", podRef(pod), "container", containerName(s), "err", err)
			}
		}
	}
}

// pruneInitContainers keeps only the newest exited instance of each init
// container.
func (m *Manager) pruneInitContainers(ctx context.Context, pod *v1.Pod, st *podState) {
	for i := range pod.Spec.InitContainers {
		seen := false
		for _, s := range st.byName[pod.Spec.InitContainers[i].Name] {
			if s.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED &&
				s.GetState() != runtimeapi.ContainerState_CONTAINER_UNKNOWN {
				continue
			}
			if !seen {
				seen = true
				continue
			}
			if err := m.removeContainer(ctx, s); err != nil {
				m.log.Warn("remove init container", "pod", podRef(pod), "container", containerName(s), "err", err)
			}
		}
	}
}
