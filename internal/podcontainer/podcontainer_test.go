package podcontainer

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestHas(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{
		Containers:     []v1.Container{{Name: "app"}, {Name: "helper"}},
		InitContainers: []v1.Container{{Name: "setup"}},
		EphemeralContainers: []v1.EphemeralContainer{{
			EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debugger"},
		}},
	}}
	for name, want := range map[string]bool{
		"app": true, "helper": true, "setup": true, "debugger": true,
		"": false, "App": false, "missing": false,
	} {
		if got := Has(pod, name); got != want {
			t.Errorf("Has(%q) = %v, want %v", name, got, want)
		}
	}
	if Has(&v1.Pod{}, "app") {
		t.Error("a pod without containers has app")
	}
}
