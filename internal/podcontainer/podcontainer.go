package podcontainer

import v1 "k8s.io/api/core/v1"

// Has reports whether pod declares a container called name: an app, init
// (sidecars included) or ephemeral container.
func Has(pod *v1.Pod, name string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}
