package main

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/nodekit-dev/nodekit/agent/podsource"
)

// TestVolumePodsParse: the manifests part (e) writes are valid static pods, the
// pod with volumes mounts each of its six volumes and the one without has none.
func TestVolumePodsParse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vols   bool
		mounts int
	}{{"vol-w-001", true, 6}, {"vol-n-001", false, 0}, {"vol-prop", false, 2}} {
		p := volumePod(tc.name, "/tmp/host", tc.vols)
		if tc.name == "vol-prop" {
			p = propagationPod(tc.name, "/tmp/host")
		}
		data, err := yaml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		pod, err := podsource.Parse(tc.name+".yaml", data, nodeName)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.name, err, data)
		}
		c := pod.Spec.Containers[0]
		if pod.Name != podName(tc.name) || len(pod.Spec.Volumes) != tc.mounts || len(c.VolumeMounts) != tc.mounts {
			t.Errorf("%s: pod %s with %d volumes, %d mounts; want %d", tc.name, pod.Name, len(pod.Spec.Volumes), len(c.VolumeMounts), tc.mounts)
		}
		if tc.vols {
			var kinds []string
			for _, v := range pod.Spec.Volumes {
				switch {
				case v.ConfigMap != nil:
					kinds = append(kinds, "configMap")
				case v.Secret != nil:
					kinds = append(kinds, "secret")
				case v.DownwardAPI != nil:
					kinds = append(kinds, "downwardAPI")
				case v.Projected != nil:
					kinds = append(kinds, "projected")
				case v.EmptyDir != nil && v.EmptyDir.Medium == "Memory":
					kinds = append(kinds, "emptyDir Memory")
				case v.HostPath != nil:
					kinds = append(kinds, "hostPath")
				}
			}
			if got := strings.Join(kinds, ", "); got != sixVolumes {
				t.Errorf("%s: volumes %s, want %s", tc.name, got, sixVolumes)
			}
		}
	}
}
