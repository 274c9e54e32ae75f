package spec

import (
	"errors"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestResources(t *testing.T) {
	host := &Host{SwapAccounting: true}
	r, err := Resources(&runtime.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 64 << 20,
	}, host)
	if err != nil {
		t.Fatal(err)
	}
	if r.CPU == nil || *r.CPU.Period != 100000 || *r.CPU.Quota != 50000 || *r.CPU.Shares != 512 {
		t.Errorf("CPU = %+v", r.CPU)
	}
	if r.Memory == nil || *r.Memory.Limit != 64<<20 || r.Memory.Swap == nil || *r.Memory.Swap != 64<<20 {
		t.Errorf("Memory = %+v, want limit and swap 64 MiB", r.Memory)
	}
	if r.Devices != nil || r.Pids != nil {
		t.Errorf("settings beyond the request: %+v", r)
	}

	empty, err := Resources(&runtime.LinuxContainerResources{}, host)
	if err != nil || empty.CPU != nil || empty.Memory != nil {
		t.Errorf("empty request: %+v, %v", empty, err)
	}

	for field, bad := range map[string]*runtime.LinuxContainerResources{
		"linux.resources.memory_limit_in_bytes": {MemoryLimitInBytes: 1 << 20},
		"linux.resources.cpu_quota":             {CpuQuota: 5},
		"linux.resources.unified":               {Unified: map[string]string{"memory.high": "1"}},
	} {
		_, err := Resources(bad, host)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("Resources(%v) = %v, want a FieldError on %s", bad, err, field)
		}
	}
}
