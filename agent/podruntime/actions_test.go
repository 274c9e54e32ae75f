package podruntime

import (
	"slices"
	"strconv"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/pleg"
)

const (
	running = runtimeapi.ContainerState_CONTAINER_RUNNING
	exited  = runtimeapi.ContainerState_CONTAINER_EXITED
	created = runtimeapi.ContainerState_CONTAINER_CREATED
	unknown = runtimeapi.ContainerState_CONTAINER_UNKNOWN
)

func sbStatus(attempt uint32, ready bool, at int64) *runtimeapi.PodSandboxStatus {
	s := &runtimeapi.PodSandboxStatus{
		Id:        "sb" + strconv.Itoa(int(attempt)),
		Metadata:  &runtimeapi.PodSandboxMetadata{Attempt: attempt},
		State:     runtimeapi.PodSandboxState_SANDBOX_NOTREADY,
		CreatedAt: at,
		Network:   &runtimeapi.PodSandboxNetworkStatus{Ip: "10.88.0.5"},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD},
		}},
	}
	if ready {
		s.State = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return s
}

// cs is a container status of a container of pod (its hash matches the spec).
func cs(pod *v1.Pod, name string, attempt uint32, state runtimeapi.ContainerState, exit int32, at int64) *runtimeapi.ContainerStatus {
	hash := "other"
	if c := containerSpec(pod, name); c != nil {
		hash = containerHash(c)
	}
	return &runtimeapi.ContainerStatus{
		Id:        name + "-" + strconv.Itoa(int(attempt)),
		Metadata:  &runtimeapi.ContainerMetadata{Name: name, Attempt: attempt},
		State:     state,
		ExitCode:  exit,
		CreatedAt: at,
		Annotations: map[string]string{
			AnnotationHash:         hash,
			AnnotationRestartCount: strconv.Itoa(int(attempt)),
		},
	}
}

func withInits(p *v1.Pod, inits ...v1.Container) *v1.Pod {
	p.Spec.InitContainers = inits
	return p
}

func withPolicy(p *v1.Pod, rp v1.RestartPolicy) *v1.Pod {
	p.Spec.RestartPolicy = rp
	return p
}

func withStartupProbe(p *v1.Pod, name string) *v1.Pod {
	containerSpec(p, name).StartupProbe = &v1.Probe{}
	return p
}

func TestComputePodActions(t *testing.T) {
	app := newPod("p", "app")
	two := newPod("p", "a", "b")
	inits := withInits(newPod("p", "app"), initC("i0", false), initC("i1", false))
	sidecars := withInits(newPod("p", "app"), initC("s0", true), initC("i1", false), initC("s2", true))

	type want struct {
		killPod, create bool
		attempt         uint32
		init, start     []int
		kill            []string
	}
	tests := []struct {
		name   string
		pod    *v1.Pod
		sbs    []*runtimeapi.PodSandboxStatus
		cs     func(p *v1.Pod) []*runtimeapi.ContainerStatus
		probes map[string]ProbeResult
		want   want
	}{
		{name: "fresh pod", pod: two,
			want: want{killPod: true, create: true, start: []int{0, 1}}},
		{name: "fresh pod with init containers starts the first init only", pod: inits,
			want: want{killPod: true, create: true, init: []int{0}}},
		{name: "everything running: nothing to do", pod: two, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "a", 0, running, 0, 2), cs(p, "b", 0, running, 0, 3)}
			},
			want: want{}},
		{name: "sandbox gone: recreate with attempt+1, restart everything", pod: app,
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, false, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, exited, 0, 2)}
			},
			want: want{killPod: true, create: true, attempt: 1, start: []int{0}}},
		{name: "sandbox gone, restartPolicy Never: the pod is done", pod: withPolicy(newPod("p", "app"), v1.RestartPolicyNever),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, false, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, exited, 1, 2)}
			},
			want: want{killPod: true, attempt: 1}},
		{name: "sandbox gone, OnFailure, all succeeded: no new sandbox", pod: withPolicy(newPod("p", "app"), v1.RestartPolicyOnFailure),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, false, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, exited, 0, 2)}
			},
			want: want{killPod: true, attempt: 1}},
		{name: "sandbox gone with init containers: start over from the first init", pod: inits,
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(2, false, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, exited, 0, 4), cs(p, "i1", 0, exited, 0, 3), cs(p, "i0", 0, exited, 0, 2)}
			},
			want: want{killPod: true, create: true, attempt: 3, init: []int{0}}},
		{name: "two ready sandboxes: reconcile", pod: app,
			sbs:  []*runtimeapi.PodSandboxStatus{sbStatus(1, true, 2), sbStatus(0, true, 1)},
			want: want{killPod: true, create: true, attempt: 2, start: []int{0}}},
		{name: "sandbox without IP: recreate", pod: app,
			sbs: func() []*runtimeapi.PodSandboxStatus {
				s := sbStatus(0, true, 1)
				s.Network.Ip = ""
				return []*runtimeapi.PodSandboxStatus{s}
			}(),
			want: want{killPod: true, create: true, attempt: 1, start: []int{0}}},

		// Init containers, in order.
		{name: "init 0 running: wait", pod: inits, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "i0", 0, running, 0, 2)}
			},
			want: want{}},
		{name: "init 0 succeeded: start init 1", pod: inits, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "i0", 0, exited, 0, 2)}
			},
			want: want{init: []int{1}}},
		{name: "all inits succeeded: start the app", pod: inits, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "i1", 0, exited, 0, 3), cs(p, "i0", 0, exited, 0, 2)}
			},
			want: want{start: []int{0}}},
		{name: "init failed, restartPolicy Always: run it again", pod: inits, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "i1", 0, exited, 1, 3), cs(p, "i0", 0, exited, 0, 2)}
			},
			want: want{init: []int{1}}},
		{name: "init failed, restartPolicy OnFailure: run it again", pod: withPolicy(withInits(newPod("p", "app"), initC("i0", false)), v1.RestartPolicyOnFailure),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "i0", 0, exited, 2, 2)}
			},
			want: want{init: []int{0}}},
		{name: "init failed, restartPolicy Never: the pod fails", pod: withPolicy(withInits(newPod("p", "app"), initC("i0", false)), v1.RestartPolicyNever),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "i0", 0, exited, 2, 2)}
			},
			want: want{killPod: true}},
		{name: "app running: init containers removed since are not rerun", pod: inits, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, running, 0, 4)}
			},
			want: want{}},

		// Sidecars.
		{name: "sidecar running without startup probe: next init starts", pod: sidecars, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "s0", 0, running, 0, 2)}
			},
			want: want{init: []int{1}}},
		{name: "sidecar not started yet (startup probe unknown): wait", pod: withStartupProbe(withInits(newPod("p", "app"), initC("s0", true), initC("i1", false)), "s0"),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "s0", 0, running, 0, 2)}
			},
			want: want{}},
		{name: "sidecar started (startup probe success): next init starts", pod: withStartupProbe(withInits(newPod("p", "app"), initC("s0", true), initC("i1", false)), "s0"),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "s0", 0, running, 0, 2)}
			},
			probes: map[string]ProbeResult{"startup/s0-0": ProbeSuccess},
			want:   want{init: []int{1}}},
		{name: "sidecar failed its startup probe: restart it", pod: withStartupProbe(withInits(newPod("p", "app"), initC("s0", true), initC("i1", false)), "s0"),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "s0", 0, running, 0, 2)}
			},
			probes: map[string]ProbeResult{"startup/s0-0": ProbeFailure},
			want:   want{init: []int{0}, kill: []string{"s0"}}},
		{name: "regular init done after sidecar: second sidecar starts", pod: sidecars, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "i1", 0, exited, 0, 3), cs(p, "s0", 0, running, 0, 2)}
			},
			want: want{init: []int{2}}},
		{name: "all sidecars up: the app starts", pod: sidecars, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "s2", 0, running, 0, 4), cs(p, "i1", 0, exited, 0, 3), cs(p, "s0", 0, running, 0, 2)}
			},
			want: want{start: []int{0}}},
		{name: "sidecar exited while the app runs: restart it only", pod: sidecars, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, running, 0, 5), cs(p, "s2", 0, running, 0, 4), cs(p, "i1", 0, exited, 0, 3), cs(p, "s0", 0, exited, 1, 2)}
			},
			want: want{init: []int{0}}},
		{name: "sidecar failed liveness: kill and restart", pod: sidecars, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				containerSpec(p, "s2").LivenessProbe = &v1.Probe{}
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, running, 0, 5), cs(p, "s2", 0, running, 0, 4), cs(p, "i1", 0, exited, 0, 3), cs(p, "s0", 0, running, 0, 2)}
			},
			probes: map[string]ProbeResult{"liveness/s2-0": ProbeFailure},
			want:   want{init: []int{2}, kill: []string{"s2"}}},
		{name: "app done under Never: sidecars do not keep the pod alive", pod: withPolicy(withInits(newPod("p", "app"), initC("s0", true)), v1.RestartPolicyNever),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, exited, 0, 3), cs(p, "s0", 0, running, 0, 2)}
			},
			want: want{killPod: true}},

		// App containers and restart policies.
		{name: "exited app, Always: restart", pod: app, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, exited, 0, 2)}
			},
			want: want{start: []int{0}}},
		{name: "exited 0, OnFailure: done, kill the pod", pod: withPolicy(newPod("p", "app"), v1.RestartPolicyOnFailure),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, exited, 0, 2)}
			},
			want: want{killPod: true}},
		{name: "exited 1, OnFailure: restart", pod: withPolicy(newPod("p", "app"), v1.RestartPolicyOnFailure),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, exited, 1, 2)}
			},
			want: want{start: []int{0}}},
		{name: "one of two exited, Never: keep the other running", pod: withPolicy(newPod("p", "a", "b"), v1.RestartPolicyNever),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "a", 0, exited, 1, 2), cs(p, "b", 0, running, 0, 3)}
			},
			want: want{}},
		{name: "created but never started: start again", pod: app, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, created, 0, 2)}
			},
			want: want{start: []int{0}}},
		{name: "unknown state: kill then start", pod: app, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, unknown, 0, 2)}
			},
			want: want{start: []int{0}, kill: []string{"app"}}},
		{name: "liveness failure: kill and restart", pod: two, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "a", 0, running, 0, 2), cs(p, "b", 0, running, 0, 3)}
			},
			probes: map[string]ProbeResult{"liveness/b-0": ProbeFailure, "liveness/a-0": ProbeSuccess},
			want:   want{start: []int{1}, kill: []string{"b"}}},
		{name: "liveness failure under Never: kill, no restart, pod done", pod: withPolicy(newPod("p", "app"), v1.RestartPolicyNever),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, running, 0, 2)}
			},
			probes: map[string]ProbeResult{"liveness/app-0": ProbeFailure},
			want:   want{killPod: true, kill: []string{"app"}}},
		{name: "startup probe failure: kill and restart", pod: app, sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "app", 0, running, 0, 2)}
			},
			probes: map[string]ProbeResult{"startup/app-0": ProbeFailure},
			want:   want{start: []int{0}, kill: []string{"app"}}},
		// Per-container restartPolicy and restartPolicyRules (ContainerRestartRules).
		{name: "container Never in an Always pod: not restarted; the other one is", pod: withContainerPolicy(newPod("p", "a", "b"), "a", v1.ContainerRestartPolicyNever),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "a", 0, exited, 1, 2), cs(p, "b", 0, exited, 1, 3)}
			},
			want: want{start: []int{1}}},
		{name: "container Always in a Never pod: restarted", pod: withContainerPolicy(withPolicy(newPod("p", "a"), v1.RestartPolicyNever), "a", v1.ContainerRestartPolicyAlways),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "a", 0, exited, 0, 2)}
			},
			want: want{start: []int{0}}},
		{name: "restart rule matches the exit code", pod: withRetryOn(withPolicy(newPod("p", "a"), v1.RestartPolicyNever), "a", 42),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "a", 0, exited, 42, 2)}
			},
			want: want{start: []int{0}}},
		{name: "restart rule does not match: done, the pod is stopped", pod: withRetryOn(withPolicy(newPod("p", "a"), v1.RestartPolicyNever), "a", 42),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "a", 0, exited, 1, 2)}
			},
			want: want{killPod: true}},
		{name: "init container Never in an Always pod failed: the pod is done", pod: withInits(newPod("p", "app"), withOwnPolicy(initC("i0", false), v1.ContainerRestartPolicyNever)),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				return []*runtimeapi.ContainerStatus{cs(p, "i0", 0, exited, 1, 2)}
			},
			want: want{killPod: true}},
		{name: "image changed: restart even under Never", pod: withPolicy(newPod("p", "app"), v1.RestartPolicyNever),
			sbs: []*runtimeapi.PodSandboxStatus{sbStatus(0, true, 1)},
			cs: func(p *v1.Pod) []*runtimeapi.ContainerStatus {
				s := cs(p, "app", 0, running, 0, 2)
				s.Annotations[AnnotationHash] = "0"
				return []*runtimeapi.ContainerStatus{s}
			},
			want: want{start: []int{0}, kill: []string{"app"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			for k, v := range tt.probes {
				e.probe[k] = v
			}
			pod := tt.pod.DeepCopy()
			rs := &pleg.PodStatus{ID: pod.UID, SandboxStatuses: tt.sbs}
			if tt.cs != nil {
				rs.ContainerStatuses = tt.cs(pod)
			}
			a := e.m.computePodActions(pod, newPodState(rs))
			var killed []string
			for _, k := range a.containersToKill {
				killed = append(killed, containerName(k.status))
			}
			got := want{a.killPod, a.createSandbox, a.attempt, a.initToStart, a.containersToStart, killed}
			if got.killPod != tt.want.killPod || got.create != tt.want.create || got.attempt != tt.want.attempt ||
				!slices.Equal(got.init, tt.want.init) || !slices.Equal(got.start, tt.want.start) || !slices.Equal(got.kill, tt.want.kill) {
				t.Errorf("actions = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

func withContainerPolicy(p *v1.Pod, name string, policy v1.ContainerRestartPolicy) *v1.Pod {
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			p.Spec.Containers[i].RestartPolicy = &policy
		}
	}
	return p
}

func withOwnPolicy(c v1.Container, policy v1.ContainerRestartPolicy) v1.Container {
	c.RestartPolicy = &policy
	return c
}

// withRetryOn gives container name restartPolicy Never and a rule restarting it
// on exit code code.
func withRetryOn(p *v1.Pod, name string, code int32) *v1.Pod {
	p = withContainerPolicy(p, name, v1.ContainerRestartPolicyNever)
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			p.Spec.Containers[i].RestartPolicyRules = []v1.ContainerRestartRule{{Action: v1.ContainerRestartRuleActionRestart,
				ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{code}}}}
		}
	}
	return p
}
