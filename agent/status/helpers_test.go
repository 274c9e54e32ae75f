package status

import (
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/pleg"
)

// Builders of pods and CRI runtime statuses for the tests.

const testRuntime = "fake"

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at returns t0 plus sec seconds in CRI nanoseconds.
func at(sec int) int64 { return t0.Add(time.Duration(sec) * time.Second).UnixNano() }

type podOpt func(*v1.Pod)

func testPod(opts ...podOpt) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-node1", Namespace: "default", UID: "uid-1",
			Annotations: map[string]string{configSourceAnnotation: "file"},
		},
		Spec: v1.PodSpec{RestartPolicy: v1.RestartPolicyAlways},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withContainers(names ...string) podOpt {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: n, Image: "img/" + n})
		}
	}
}

func withInit(names ...string) podOpt {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n, Image: "img/" + n})
		}
	}
}

func withSidecars(names ...string) podOpt {
	return func(p *v1.Pod) {
		always := v1.ContainerRestartPolicyAlways
		for _, n := range names {
			p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n, Image: "img/" + n, RestartPolicy: &always})
		}
	}
}

func withRestart(rp v1.RestartPolicy) podOpt {
	return func(p *v1.Pod) { p.Spec.RestartPolicy = rp }
}

func withReadinessGates(types ...v1.PodConditionType) podOpt {
	return func(p *v1.Pod) {
		for _, t := range types {
			p.Spec.ReadinessGates = append(p.Spec.ReadinessGates, v1.PodReadinessGate{ConditionType: t})
		}
	}
}

type ctrOpt func(*runtimeapi.ContainerStatus)

// ctr builds a CRI container status created at t0+created seconds.
func ctr(name, id string, created int, state runtimeapi.ContainerState, opts ...ctrOpt) *runtimeapi.ContainerStatus {
	c := &runtimeapi.ContainerStatus{
		Id:        id,
		Metadata:  &runtimeapi.ContainerMetadata{Name: name},
		State:     state,
		CreatedAt: at(created),
		Image:     &runtimeapi.ImageSpec{Image: "docker.io/img/" + name + ":latest"},
		ImageRef:  "sha256:" + name,
		Labels: map[string]string{
			kubetypes.KubernetesContainerNameLabel: name,
			kubetypes.KubernetesPodUIDLabel:        "uid-1",
		},
		Annotations: map[string]string{},
	}
	if state != runtimeapi.ContainerState_CONTAINER_CREATED {
		c.StartedAt = at(created + 1)
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func running(name, id string, created int, opts ...ctrOpt) *runtimeapi.ContainerStatus {
	return ctr(name, id, created, runtimeapi.ContainerState_CONTAINER_RUNNING, opts...)
}

func exited(name, id string, created int, code int32, opts ...ctrOpt) *runtimeapi.ContainerStatus {
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	o := append([]ctrOpt{func(c *runtimeapi.ContainerStatus) {
		c.ExitCode = code
		c.Reason = reason
		c.FinishedAt = at(created + 5)
	}}, opts...)
	return ctr(name, id, created, runtimeapi.ContainerState_CONTAINER_EXITED, o...)
}

func restarts(n int) ctrOpt {
	return func(c *runtimeapi.ContainerStatus) {
		c.Annotations[RestartCountAnnotation] = strconv.Itoa(n)
		c.Metadata.Attempt = uint32(n)
	}
}

func sandbox(id string, created int, ready bool, ip string) *runtimeapi.PodSandboxStatus {
	st := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	if ready {
		st = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return &runtimeapi.PodSandboxStatus{
		Id:        id,
		Metadata:  &runtimeapi.PodSandboxMetadata{Name: "web-node1", Namespace: "default", Uid: "uid-1"},
		State:     st,
		CreatedAt: at(created),
		Network:   &runtimeapi.PodSandboxNetworkStatus{Ip: ip},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD},
		}},
	}
}

// rstatus builds a runtime pod status with one ready sandbox (created at t0)
// and the given containers.
func rstatus(cs ...*runtimeapi.ContainerStatus) *pleg.PodStatus {
	return &pleg.PodStatus{
		ID: types.UID("uid-1"), Name: "web-node1", Namespace: "default",
		IPs:               []string{"10.88.0.5"},
		SandboxStatuses:   []*runtimeapi.PodSandboxStatus{sandbox("sb1", 0, true, "10.88.0.5")},
		ContainerStatuses: cs,
	}
}

func opts() GenerateOptions {
	return GenerateOptions{RuntimeName: testRuntime, Now: t0.Add(time.Hour)}
}

func reasons(m map[string]string) func(types.UID, string) (string, string) {
	return func(_ types.UID, name string) (string, string) {
		r := m[name]
		if r == "" {
			return "", ""
		}
		return r, "msg for " + name
	}
}

func condition(s v1.PodStatus, t v1.PodConditionType) *v1.PodCondition {
	_, c := findCondition(s.Conditions, t)
	return c
}

func boolp(b bool) *bool { return &b }
