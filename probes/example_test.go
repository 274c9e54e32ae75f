package probes_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodekit-dev/nodekit/probes"
)

// staticStatus serves one fixed pod status.
type staticStatus struct{ status v1.PodStatus }

func (s staticStatus) GetPodStatus(types.UID) (v1.PodStatus, bool) { return s.status, true }

// A readiness probe against a web server: the container starts not ready and
// becomes ready after its first successful probe.
func Example() {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer web.Close()
	u, _ := url.Parse(web.URL)
	port, _ := strconv.Atoi(u.Port())

	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name: "web",
			ReadinessProbe: &v1.Probe{
				ProbeHandler:  v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(int32(port))}},
				PeriodSeconds: 1,
			},
		}}},
	}
	status := v1.PodStatus{
		Phase: v1.PodRunning,
		PodIP: u.Hostname(),
		ContainerStatuses: []v1.ContainerStatus{{
			Name:        "web",
			ContainerID: "nodekit://0123abcd",
			State:       v1.ContainerState{Running: &v1.ContainerStateRunning{}},
		}},
	}

	m, err := probes.New(probes.Options{Status: staticStatus{status}})
	if err != nil {
		panic(err)
	}
	defer m.Stop()
	m.AddPod(pod)
	for range 2 {
		up := <-m.Readiness()
		fmt.Println(up.ContainerName, up.ContainerID, up.Result)
	}
	m.UpdatePodStatus(pod, &status)
	fmt.Println("ready:", status.ContainerStatuses[0].Ready)
	// Output:
	// web nodekit://0123abcd Failure
	// web nodekit://0123abcd Success
	// ready: true
}
