package podruntime

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/agent/status"
)

// Container annotations the manager writes on CRI containers (the kubelet's
// names, from pkg/kubelet/kuberuntime/labels.go). They let anyone holding only
// the CRI status rebuild what is needed to report or stop the container.
const (
	AnnotationHash                     = "io.kubernetes.container.hash"
	AnnotationRestartCount             = "io.kubernetes.container.restartCount"
	AnnotationTerminationMessagePath   = status.TerminationMessagePathAnnotation // read back by status.ReadTerminationMessage
	AnnotationTerminationMessagePolicy = status.TerminationMessagePolicyAnnotation
	AnnotationPreStopHandler           = "io.kubernetes.container.preStopHandler"
	AnnotationPorts                    = "io.kubernetes.container.ports"
	AnnotationTerminationGracePeriod   = "io.kubernetes.pod.terminationGracePeriod"
	AnnotationDeletionGracePeriod      = "io.kubernetes.pod.deletionGracePeriod"
)

// podLabels are the labels of a pod's sandbox: the pod's own plus its identity.
func podLabels(pod *v1.Pod) map[string]string {
	l := maps.Clone(pod.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[kubetypes.KubernetesPodNameLabel] = pod.Name
	l[kubetypes.KubernetesPodNamespaceLabel] = pod.Namespace
	l[kubetypes.KubernetesPodUIDLabel] = string(pod.UID)
	return l
}

func podAnnotations(pod *v1.Pod) map[string]string {
	a := maps.Clone(pod.Annotations)
	if a == nil {
		a = map[string]string{}
	}
	return a
}

func containerLabels(pod *v1.Pod, c *v1.Container) map[string]string {
	return map[string]string{
		kubetypes.KubernetesPodNameLabel:       pod.Name,
		kubetypes.KubernetesPodNamespaceLabel:  pod.Namespace,
		kubetypes.KubernetesPodUIDLabel:        string(pod.UID),
		kubetypes.KubernetesContainerNameLabel: c.Name,
	}
}

func containerAnnotations(pod *v1.Pod, c *v1.Container, restarts int) map[string]string {
	a := map[string]string{
		AnnotationHash:                     containerHash(c),
		AnnotationRestartCount:             strconv.Itoa(restarts),
		AnnotationTerminationMessagePath:   c.TerminationMessagePath,
		AnnotationTerminationMessagePolicy: string(c.TerminationMessagePolicy),
	}
	if pod.DeletionGracePeriodSeconds != nil {
		a[AnnotationDeletionGracePeriod] = strconv.FormatInt(*pod.DeletionGracePeriodSeconds, 10)
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		a[AnnotationTerminationGracePeriod] = strconv.FormatInt(*pod.Spec.TerminationGracePeriodSeconds, 10)
	}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if raw, err := json.Marshal(c.Lifecycle.PreStop); err == nil {
			a[AnnotationPreStopHandler] = string(raw)
		}
	}
	if len(c.Ports) > 0 {
		if raw, err := json.Marshal(c.Ports); err == nil {
			a[AnnotationPorts] = string(raw)
		}
	}
	return a
}

// containerHash identifies the parts of a container spec whose change requires a
// new container. As upstream today, only the name and image count: other
// changes of a static pod's manifest give the pod a new UID anyway.
func containerHash(c *v1.Container) string {
	raw, _ := json.Marshal(map[string]string{"name": c.Name, "image": c.Image})
	h := fnv.New32a()
	h.Write(raw)
	return strconv.FormatUint(uint64(h.Sum32()), 16)
}

func containerChanged(c *v1.Container, st *runtimeapi.ContainerStatus) bool {
	return st.GetAnnotations()[AnnotationHash] != containerHash(c)
}

// restoredSpec rebuilds from a CRI container's labels and annotations what is
// needed to stop it when the pod spec is gone (the kubelet's
// restoreSpecsFromContainerLabels).
func restoredSpec(st *runtimeapi.ContainerStatus) (*v1.Pod, *v1.Container) {
	l, a := st.GetLabels(), st.GetAnnotations()
	pod := &v1.Pod{}
	pod.Name = l[kubetypes.KubernetesPodNameLabel]
	pod.Namespace = l[kubetypes.KubernetesPodNamespaceLabel]
	pod.UID = types.UID(l[kubetypes.KubernetesPodUIDLabel])
	if v, err := strconv.ParseInt(a[AnnotationDeletionGracePeriod], 10, 64); err == nil {
		pod.DeletionGracePeriodSeconds = &v
	}
	if v, err := strconv.ParseInt(a[AnnotationTerminationGracePeriod], 10, 64); err == nil {
		pod.Spec.TerminationGracePeriodSeconds = &v
	}
	c := &v1.Container{Name: containerName(st), TerminationMessagePath: a[AnnotationTerminationMessagePath]}
	if raw := a[AnnotationPorts]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &c.Ports)
	}
	if raw := a[AnnotationPreStopHandler]; raw != "" {
		var h v1.LifecycleHandler
		if err := json.Unmarshal([]byte(raw), &h); err == nil {
			c.Lifecycle = &v1.Lifecycle{PreStop: &h}
		}
	}
	return pod, c
}

// backOffKey identifies a container for crash-loop back-off: pod, container and
// spec hash (a changed container starts with a fresh back-off).
func backOffKey(pod *v1.Pod, c *v1.Container) string {
	return fmt.Sprintf("%s_%s_%s_%s_%s", pod.Name, pod.Namespace, pod.UID, c.Name, containerHash(c))
}

// isRestartableInit says whether an init container is a sidecar (restartPolicy
// Always).
func isRestartableInit(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

func hasRestartableInit(pod *v1.Pod) bool {
	for i := range pod.Spec.InitContainers {
		if isRestartableInit(&pod.Spec.InitContainers[i]) {
			return true
		}
	}
	return false
}

// containerSpec finds a container (app or init) of the pod by name.
func containerSpec(pod *v1.Pod, name string) *v1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}
