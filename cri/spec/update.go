package spec

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Resources validates CRI container resources exactly as Generate does and
// returns the cgroup settings Generate puts in linux.resources for them (CPU,
// memory, hugepage limits, unified; a zero value leaves its setting unset). It
// is for UpdateContainerResources. Invalid values fail with a *FieldError whose
// Field is relative to the ContainerConfig ("linux.resources.cpu_quota"). host
// nil means DetectHost's answer for this process.
func Resources(r *runtime.LinuxContainerResources, host *Host) (*specs.LinuxResources, error) {
	if host == nil {
		h, err := detectedHost()
		if err != nil {
			return nil, fmt.Errorf("container resources: %w", err)
		}
		host = &h
	}
	s := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{}}}
	in := Input{
		Config: &runtime.ContainerConfig{Linux: &runtime.LinuxContainerConfig{Resources: r}},
		Host:   host,
	}
	if err := setResources(s, in); err != nil {
		return nil, err
	}
	return s.Linux.Resources, nil
}
