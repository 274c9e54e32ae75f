package status

import (
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/agent/qos"
	"github.com/nodekit-dev/nodekit/internal/containerid"
	"github.com/nodekit-dev/nodekit/internal/restartpolicy"
	"github.com/nodekit-dev/nodekit/pleg"
)

// Waiting and terminated reasons the status generator sets itself (the kubelet's
// names). Other waiting reasons (CrashLoopBackOff, ErrImagePull,
// ImagePullBackOff, CreateContainerConfigError, ...) come from
// GenerateOptions.WaitingReason.
const (
	ReasonContainerCreating      = "ContainerCreating"
	ReasonPodInitializing        = "PodInitializing"
	ReasonContainerStatusUnknown = "ContainerStatusUnknown"
	ReasonCompleted              = "Completed"
)

// RestartCountAnnotation is the CRI container annotation holding the container's
// restart count (the kubelet's io.kubernetes.container.restartCount).
const RestartCountAnnotation = "io.kubernetes.container.restartCount"

// GenerateOptions are the inputs of Generate beyond the pod and its runtime status.
type GenerateOptions struct {
	// RuntimeName prefixes container IDs: "<RuntimeName>://<id>" (the CRI
	// Version's RuntimeName, e.g. "nodekit" or "containerd").
	RuntimeName string
	// Now is the time for a new StartTime and condition transitions; zero means
	// time.Now().
	Now time.Time
	// HostIPs are the node's IPs, primary first. They fill HostIP/HostIPs, choose
	// which IP family comes first in PodIPs (IPv4 unless the node's primary IP is
	// IPv6) and are the pod IPs of host-network pods. Empty: none of that.
	HostIPs []string
	// PodIsTerminal says the pod worker is finished with the pod: no container
	// will start again. As upstream, static pods ignore it.
	PodIsTerminal bool
	// WaitingReason reports why the pod runtime did not (re)start a container
	// that should run (CrashLoopBackOff, ErrImagePull, ...). An empty reason
	// means none is known. The pod runtime's WaitingReason method fits.
	WaitingReason func(uid types.UID, container string) (reason, message string)
	// ProbeStatus fills the Ready and Started fields of the container statuses
	// from probe results before the conditions are computed (the probe
	// manager's UpdatePodStatus fits). When nil, a running container without a
	// startup (readiness) probe is started (ready), one with a probe keeps what
	// old said for the same container ID, and a regular init container is ready
	// once it exited 0.
	ProbeStatus func(pod *v1.Pod, status *v1.PodStatus)
	// TerminationMessage returns the message an exited container left. When nil,
	// the file mounted at the container's terminationMessagePath is read, or the
	// tail of its log per the FallbackToLogsOnError policy (see
	// ReadTerminationMessage).
	TerminationMessage func(c *runtimeapi.ContainerStatus) string
}

// Generate computes the API status of pod from its runtime status rs, as the
// kubelet's generateAPIPodStatus does. old is the pod's previous status (the
// status manager's, or pod.Status if it has none): it keeps restart counts, last
// termination states, start time and condition transition times, and a terminal
// phase in old or in pod.Status is never left. rs may be nil (nothing runs yet).
func Generate(pod *v1.Pod, rs *pleg.PodStatus, old v1.PodStatus, opts GenerateOptions) v1.PodStatus {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	rs = sortedRuntimeStatus(rs)
	g := &generator{pod: pod, rs: rs, opts: opts}

	var s v1.PodStatus
	s.ObservedGeneration = pod.Generation
	s.QOSClass = qos.StatusClass(pod)
	g.setIPs(&s)

	hasInit := len(pod.Spec.InitContainers) > 0
	s.ContainerStatuses = g.containerStatuses(pod.Spec.Containers, old.ContainerStatuses, hasInit, false)
	s.InitContainerStatuses = g.containerStatuses(pod.Spec.InitContainers, old.InitContainerStatuses, hasInit, true)

	all := append(append([]v1.ContainerStatus{}, s.ContainerStatuses...), s.InitContainerStatuses...)
	s.Phase = phase(pod, all, opts.PodIsTerminal, g.activeRegularContainerExists())

	// A terminal phase, in the previous status or the API's, is never left.
	if !isTerminal(s.Phase) {
		switch {
		case isTerminal(old.Phase):
			s.Phase = old.Phase
		case isTerminal(pod.Status.Phase):
			s.Phase = pod.Status.Phase
		}
	}
	if s.Phase == old.Phase {
		s.Reason, s.Message = old.Reason, old.Message
		if s.Reason == "" {
			s.Reason = pod.Status.Reason
		}
		if s.Message == "" {
			s.Message = pod.Status.Message
		}
	}
	if isTerminal(pod.Status.Phase) && s.Phase != pod.Status.Phase {
		s.Phase = pod.Status.Phase
	}

	if opts.ProbeStatus != nil {
		opts.ProbeStatus(pod, &s)
	} else {
		applyProbeDefaults(pod, &s, old)
	}

	// Conditions others own are kept; the kubelet's are regenerated.
	s.Conditions = make([]v1.PodCondition, 0, len(pod.Status.Conditions)+5)
	for _, c := range pod.Status.Conditions {
		if !isKubeletCondition(c.Type) {
			s.Conditions = append(s.Conditions, c)
		}
	}
	if _, c := findCondition(old.Conditions, v1.DisruptionTarget); c != nil {
		if i, _ := findCondition(s.Conditions, v1.DisruptionTarget); i >= 0 {
			s.Conditions[i] = *c
		} else {
			s.Conditions = append(s.Conditions, *c)
		}
	}
	allInitFirst := append(append([]v1.ContainerStatus{}, s.InitContainerStatuses...), s.ContainerStatuses...)
	s.Conditions = append(s.Conditions, readyToStartContainersCondition(pod, rs))
	s.Conditions = append(s.Conditions, initializedCondition(pod, allInitFirst, s.Phase))
	s.Conditions = append(s.Conditions, podReadyCondition(pod, s.Conditions, allInitFirst, s.Phase))
	s.Conditions = append(s.Conditions, containersReadyCondition(pod, allInitFirst, s.Phase))
	s.Conditions = append(s.Conditions, v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionTrue, ObservedGeneration: pod.Generation})
	for _, t := range kubeletConditions {
		setTransitionTime(&s, &old, t, now)
	}

	switch {
	case old.StartTime != nil && !old.StartTime.IsZero():
		s.StartTime = old.StartTime.DeepCopy()
	case pod.Status.StartTime != nil && !pod.Status.StartTime.IsZero():
		s.StartTime = pod.Status.StartTime.DeepCopy()
	default:
		t := metav1.NewTime(now)
		s.StartTime = &t
	}
	return s
}

// setTransitionTime keeps the condition's LastTransitionTime from old when its
// status did not change, and sets it to now otherwise.
func setTransitionTime(s, old *v1.PodStatus, t v1.PodConditionType, now time.Time) {
	_, c := findCondition(s.Conditions, t)
	if c == nil {
		return
	}
	if _, oc := findCondition(old.Conditions, t); oc != nil && oc.Status == c.Status {
		c.LastTransitionTime = oc.LastTransitionTime
		return
	}
	c.LastTransitionTime = metav1.NewTime(now)
}

// sortedRuntimeStatus returns rs with sandboxes and containers ordered newest
// first (by creation time), without changing rs.
func sortedRuntimeStatus(rs *pleg.PodStatus) *pleg.PodStatus {
	if rs == nil {
		return &pleg.PodStatus{}
	}
	cp := *rs
	cp.SandboxStatuses = slices.Clone(rs.SandboxStatuses)
	sort.SliceStable(cp.SandboxStatuses, func(i, j int) bool {
		return cp.SandboxStatuses[i].GetCreatedAt() > cp.SandboxStatuses[j].GetCreatedAt()
	})
	cp.ContainerStatuses = slices.Clone(rs.ContainerStatuses)
	sort.SliceStable(cp.ContainerStatuses, func(i, j int) bool {
		return cp.ContainerStatuses[i].GetCreatedAt() > cp.ContainerStatuses[j].GetCreatedAt()
	})
	return &cp
}

// containerName is the pod-spec name of a CRI container.
func containerName(c *runtimeapi.ContainerStatus) string {
	if n := c.GetMetadata().GetName(); n != "" {
		return n
	}
	return c.GetLabels()[kubetypes.KubernetesContainerNameLabel]
}

type generator struct {
	pod  *v1.Pod
	rs   *pleg.PodStatus
	opts GenerateOptions
}

// newest returns the newest runtime status of the named container.
func (g *generator) newest(name string) *runtimeapi.ContainerStatus {
	for _, c := range g.rs.ContainerStatuses {
		if containerName(c) == name {
			return c
		}
	}
	return nil
}

// activeRegularContainerExists reports whether an app container was created in
// the pod's newest sandbox (kubecontainer.HasAnyActiveRegularContainerStarted).
// CRI container statuses do not name their sandbox, so "in the newest sandbox"
// means created no earlier than it; without sandboxes every container counts.
func (g *generator) activeRegularContainerExists() bool {
	var since int64
	if len(g.rs.SandboxStatuses) > 0 {
		since = g.rs.SandboxStatuses[0].GetCreatedAt()
	}
	for _, c := range g.rs.ContainerStatuses {
		if c.GetCreatedAt() < since {
			continue
		}
		name := containerName(c)
		for _, spec := range g.pod.Spec.Containers {
			if spec.Name == name {
				return true
			}
		}
	}
	return false
}

// anyRegularContainerCreated reports whether the newest instance of some app
// container is known to the runtime in a known state
// (kuberuntime.HasAnyRegularContainerCreated).
func (g *generator) anyRegularContainerCreated() bool {
	for _, spec := range g.pod.Spec.Containers {
		if c := g.newest(spec.Name); c != nil && c.GetState() != runtimeapi.ContainerState_CONTAINER_UNKNOWN {
			return true
		}
	}
	return false
}

// shouldRestart reports whether the pod runtime will (re)start the container
// (kubecontainer.ShouldContainerBeRestarted); sidecars always restart.
func (g *generator) shouldRestart(c *v1.Container) bool {
	if g.pod.DeletionTimestamp != nil {
		return false
	}
	s := g.newest(c.Name)
	if s == nil {
		return true
	}
	switch s.GetState() {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return false
	case runtimeapi.ContainerState_CONTAINER_UNKNOWN, runtimeapi.ContainerState_CONTAINER_CREATED:
		return true
	}
	if isSidecar(c) {
		return true
	}
	return restartpolicy.ShouldRestart(c, &g.pod.Spec, s.GetExitCode())
}

func (g *generator) containerID(id string) string {
	if id == "" {
		return ""
	}
	return containerid.ID{Type: g.opts.RuntimeName, ID: id}.String()
}

// restartCount is the container's restart count: its annotation, else the CRI
// attempt or the number of older instances, whichever is larger.
func (g *generator) restartCount(c *runtimeapi.ContainerStatus, olderInstances int) int32 {
	if v, ok := c.GetAnnotations()[RestartCountAnnotation]; ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n >= 0 {
			return int32(n)
		}
	}
	n := int32(c.GetMetadata().GetAttempt())
	if int32(olderInstances) > n {
		n = int32(olderInstances)
	}
	return n
}

// terminationMessage is the runtime's message for an exited container, enriched
// with the message the container left (kuberuntime's getPodContainerStatuses).
func (g *generator) terminationMessage(c *runtimeapi.ContainerStatus) string {
	msg := c.GetMessage()
	var left string
	if g.opts.TerminationMessage != nil {
		left = g.opts.TerminationMessage(c)
	} else {
		left = ReadTerminationMessage(c)
	}
	if left != "" {
		if msg != "" {
			msg += ": "
		}
		msg += left
	}
	return msg
}

// convert turns one CRI container status into an API container status.
func (g *generator) convert(spec *v1.Container, c *runtimeapi.ContainerStatus, olderInstances int, old *v1.ContainerStatus) *v1.ContainerStatus {
	cid := g.containerID(c.GetId())
	s := &v1.ContainerStatus{
		Name:         spec.Name,
		RestartCount: g.restartCount(c, olderInstances),
		Image:        spec.Image,
		ImageID:      c.GetImageRef(),
		ContainerID:  cid,
	}
	if u := c.GetUser().GetLinux(); u != nil {
		s.User = &v1.ContainerUser{Linux: &v1.LinuxContainerUser{UID: u.GetUid(), GID: u.GetGid(), SupplementalGroups: slices.Clone(u.GetSupplementalGroups())}}
	}
	switch c.GetState() {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		s.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Unix(0, c.GetStartedAt()))}
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		s.State.Waiting = &v1.ContainerStateWaiting{}
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		s.State.Terminated = &v1.ContainerStateTerminated{
			ExitCode:    c.GetExitCode(),
			Reason:      c.GetReason(),
			Message:     g.terminationMessage(c),
			StartedAt:   metav1.NewTime(time.Unix(0, c.GetStartedAt())),
			FinishedAt:  metav1.NewTime(time.Unix(0, c.GetFinishedAt())),
			ContainerID: cid,
		}
	default:
		if old != nil && old.State.Running != nil {
			// It ran before and the runtime lost it: report a failure rather
			// than waiting, so run-once pods do not run twice.
			s.State.Terminated = &v1.ContainerStateTerminated{
				Reason:   ReasonContainerStatusUnknown,
				Message:  "The container could not be located when the pod was terminated",
				ExitCode: 137,
			}
			s.RestartCount = old.RestartCount + 1
		} else {
			s.State.Waiting = &v1.ContainerStateWaiting{}
		}
	}
	return s
}

// containerStatuses converts the runtime statuses of containers (the pod's init
// or app containers) as the kubelet's convertToAPIContainerStatuses does.
func (g *generator) containerStatuses(containers []v1.Container, previous []v1.ContainerStatus, hasInit, isInit bool) []v1.ContainerStatus {
	oldByName := make(map[string]v1.ContainerStatus, len(previous))
	for _, s := range previous {
		oldByName[s.Name] = s
	}
	defaultWaiting := v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: ReasonContainerCreating}}
	if hasInit {
		defaultWaiting = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: ReasonPodInitializing}}
	}
	isDefaultWaiting := func(s *v1.ContainerStatus) bool {
		return s.State.Waiting != nil && s.State.Waiting.Reason == defaultWaiting.Waiting.Reason
	}

	statuses := make(map[string]*v1.ContainerStatus, len(containers))
	specs := make(map[string]*v1.Container, len(containers))
	for i := range containers {
		c := &containers[i]
		specs[c.Name] = c
		s := &v1.ContainerStatus{Name: c.Name, Image: c.Image, State: *defaultWaiting.DeepCopy()}
		if old, ok := oldByName[c.Name]; ok {
			if old.State.Terminated != nil {
				s = old.DeepCopy()
			} else {
				s.RestartCount = old.RestartCount
				s.LastTerminationState = *old.LastTerminationState.DeepCopy()
			}
		}
		statuses[c.Name] = s
	}

	// A container that was running and vanished from the runtime terminated,
	// even if we do not know how.
	for i := range containers {
		c := &containers[i]
		if g.newest(c.Name) != nil {
			continue
		}
		old, ok := oldByName[c.Name]
		if !ok || old.State.Terminated != nil || old.State.Running == nil {
			continue
		}
		s := statuses[c.Name]
		if !isDefaultWaiting(s) || s.LastTerminationState.Terminated != nil {
			continue
		}
		s.LastTerminationState.Terminated = &v1.ContainerStateTerminated{
			Reason:   ReasonContainerStatusUnknown,
			Message:  "The container could not be located when the pod was deleted.  The container used to be Running",
			ExitCode: 137,
		}
		if g.pod.DeletionTimestamp == nil {
			s.RestartCount++
		}
	}

	// The newest instance is the state, the one before it the last state.
	total := map[string]int{}
	for _, c := range g.rs.ContainerStatuses {
		total[containerName(c)]++
	}
	seen := map[string]int{}
	for _, c := range g.rs.ContainerStatuses {
		name := containerName(c)
		spec, ok := specs[name]
		if !ok || seen[name] >= 2 {
			continue
		}
		var oldPtr *v1.ContainerStatus
		if old, ok := oldByName[name]; ok {
			oldPtr = &old
		}
		s := g.convert(spec, c, total[name]-seen[name]-1, oldPtr)
		if s.State.Running != nil && oldPtr != nil && oldPtr.Started != nil {
			started := *oldPtr.Started
			s.Started = &started
		}
		if seen[name] == 0 {
			statuses[name] = s
		} else {
			statuses[name].LastTerminationState = s.State
		}
		seen[name]++
	}

	// Containers the runtime should (re)start but could not are waiting, with
	// the pod runtime's reason.
	for i := range containers {
		c := &containers[i]
		if isInit {
			n := g.newest(c.Name)
			if n != nil && n.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED && n.GetExitCode() == 0 {
				continue
			}
			// An init container removed from the runtime after the app
			// containers were created must have succeeded.
			if n == nil && !isSidecar(c) && statuses[c.Name].State.Waiting != nil && g.anyRegularContainerCreated() {
				statuses[c.Name].State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
					Reason:   ReasonCompleted,
					Message:  "Unable to get init container status from container runtime and pod has been initialized, treat it as exited normally",
					ExitCode: 0,
				}}
				continue
			}
		}
		if !g.shouldRestart(c) || g.opts.WaitingReason == nil {
			continue
		}
		reason, message := g.opts.WaitingReason(g.pod.UID, c.Name)
		if reason == "" {
			continue
		}
		s := statuses[c.Name]
		if s.State.Terminated != nil {
			s.LastTerminationState = s.State
		}
		s.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reason, Message: message}}
	}

	out := make([]v1.ContainerStatus, 0, len(containers))
	if isInit {
		for _, c := range containers {
			out = append(out, *statuses[c.Name])
		}
		return out
	}
	for _, s := range statuses {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// applyProbeDefaults sets Ready and Started when no probe manager is wired in:
// see GenerateOptions.ProbeStatus.
func applyProbeDefaults(pod *v1.Pod, s *v1.PodStatus, old v1.PodStatus) {
	oldByID := map[string]v1.ContainerStatus{}
	for _, c := range append(append([]v1.ContainerStatus{}, old.InitContainerStatuses...), old.ContainerStatuses...) {
		if c.ContainerID != "" {
			oldByID[c.ContainerID] = c
		}
	}
	apply := func(spec *v1.Container, cs *v1.ContainerStatus) {
		prev, samePrev := oldByID[cs.ContainerID]
		samePrev = samePrev && cs.ContainerID != ""
		running := cs.State.Running != nil
		started := running && (spec.StartupProbe == nil || (samePrev && prev.Started != nil && *prev.Started))
		cs.Started = &started
		cs.Ready = started && (spec.ReadinessProbe == nil || (samePrev && prev.Ready))
	}
	for i := range s.InitContainerStatuses {
		cs := &s.InitContainerStatuses[i]
		spec := specByName(pod.Spec.InitContainers, cs.Name)
		if spec == nil {
			continue
		}
		if isSidecar(spec) {
			apply(spec, cs)
			continue
		}
		started := cs.State.Running != nil
		cs.Started = &started
		cs.Ready = cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
	}
	for i := range s.ContainerStatuses {
		cs := &s.ContainerStatuses[i]
		if spec := specByName(pod.Spec.Containers, cs.Name); spec != nil {
			apply(spec, cs)
		}
	}
}

func specByName(containers []v1.Container, name string) *v1.Container {
	for i := range containers {
		if containers[i].Name == name {
			return &containers[i]
		}
	}
	return nil
}

// setIPs fills PodIP(s) from the runtime's IPs, at most one per family with the
// node's family first, and HostIP(s) from the options; host-network pods get the
// node's IPs.
func (g *generator) setIPs(s *v1.PodStatus) {
	primaryV6 := false
	if len(g.opts.HostIPs) > 0 {
		if a, err := netip.ParseAddr(g.opts.HostIPs[0]); err == nil && a.Unmap().Is6() {
			primaryV6 = true
		}
	}
	pick := func(v6 bool) string {
		for _, ip := range g.rs.IPs {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				continue
			}
			a = a.Unmap()
			if a.Is6() == v6 {
				return a.String()
			}
		}
		return ""
	}
	for _, ip := range []string{pick(primaryV6), pick(!primaryV6)} {
		if ip != "" {
			s.PodIPs = append(s.PodIPs, v1.PodIP{IP: ip})
		}
	}
	if len(s.PodIPs) > 0 {
		s.PodIP = s.PodIPs[0].IP
	}

	hosts := g.opts.HostIPs
	if len(hosts) > 2 {
		hosts = hosts[:2]
	}
	if len(hosts) == 0 {
		return
	}
	s.HostIP = hosts[0]
	for _, ip := range hosts {
		s.HostIPs = append(s.HostIPs, v1.HostIP{IP: ip})
	}
	if g.pod.Spec.HostNetwork {
		if s.PodIP == "" {
			s.PodIP = hosts[0]
			s.PodIPs = []v1.PodIP{{IP: hosts[0]}}
		}
		if len(hosts) == 2 && len(s.PodIPs) == 1 && isV6(s.PodIPs[0].IP) != isV6(hosts[1]) {
			s.PodIPs = append(s.PodIPs, v1.PodIP{IP: hosts[1]})
		}
	}
}

func isV6(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.Unmap().Is6()
}
